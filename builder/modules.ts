// Kernel modules: modules.dep parsing and the dependency closure of the modules boot needs. Pure.

/** Module name as modprobe normalises it: basename without .ko*, '-' read as '_'. */
export function moduleName(path: string): string {
  return path
    .replace(/^.*\//, '')
    .replace(/\.ko(\.[a-z]+)?$/, '')
    .replace(/-/g, '_');
}

/** Parses modules.dep ("path: dep dep") into path -> deps. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    deps.set(
      line.slice(0, i).trim(),
      line
        .slice(i + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  return deps;
}

/**
 * The module files needed to load `names` (with all their dependencies), in load order.
 * Names missing from modules.dep are returned in `missing` (they may be built in).
 */
export function moduleClosure(deps: Map<string, string[]>, names: string[]): { paths: string[]; missing: string[] } {
  const byName = new Map<string, string>();
  for (const p of deps.keys()) byName.set(moduleName(p), p);
  const out: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const visit = (p: string) => {
    if (seen.has(p)) return;
    seen.add(p);
    for (const d of deps.get(p) ?? []) visit(d);
    out.push(p);
  };
  for (const n of names) {
    const p = byName.get(moduleName(n));
    if (p) visit(p);
    else missing.push(n);
  }
  return { paths: out, missing };
}

/** modules.dep text for a subset of modules (what busybox modprobe in the initramfs reads). */
export function modulesDepFor(deps: Map<string, string[]>, paths: string[]): string {
  return [...paths]
    .sort()
    .map((p) => `${p}:${(deps.get(p) ?? []).map((d) => ' ' + d).join('')}\n`)
    .join('');
}
