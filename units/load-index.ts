// The unit search path as systemd sees it (unit_file_build_name_map, unit_file_find_fragment,
// unit_file_find_dropin_paths): which file, mask or alias each name has, and where its drop-ins are.
import { posix } from 'node:path';
import {
  instanceOf,
  instantiate,
  isInstance,
  isTemplate,
  isValidUnitName,
  splitUnitName,
  templateOf,
} from './names.js';
import { indexContainerUnits } from './quadlet-load.js';

/** What load.ts needs from a file system; tests pass a fake, `keel analyze` the real one (real-fs.ts). */
export interface UnitFs {
  readFile(p: string): string;
  readdir(p: string): string[];
  /** null when nothing is there. */
  lstat(p: string): { isDirectory: boolean; isSymbolicLink: boolean; isFile: boolean } | null;
  readlink(p: string): string;
}

type Entry = { kind: 'file' | 'masked'; path: string } | { kind: 'alias'; target: string; finalPath: string };

/** The name map of one search path, built once per load. */
export interface UnitIndex {
  fs: UnitFs;
  searchPaths: string[];
  ids: Map<string, Entry>;
  listings: Map<string, string[] | null>;
}

/** Where a name leads: its canonical name, fragment (or mask) and the other names it is known by. */
export interface Resolved {
  name: string;
  fragment: string | null;
  masked: boolean;
  aliases: string[];
}

/** Lists a directory (null when it does not exist or is not one), cached per index. */
export function listDir(idx: UnitIndex, dir: string): string[] | null {
  if (!idx.listings.has(dir)) {
    let names: string[] | null = null;
    try {
      names = idx.fs.readdir(dir).sort();
    } catch {
      /* missing directories are normal in a search path */
    }
    idx.listings.set(dir, names);
  }
  return idx.listings.get(dir)!;
}

/**
 * Follows a symlink chain to its end ('/dev/null' for masks); relative targets are relative to the link's directory.
 */
export function chaseLink(fs: UnitFs, p: string): string {
  for (let hops = 0; hops < 32; hops++) {
    if (p === '/dev/null') return p;
    const st = fs.lstat(p);
    if (!st?.isSymbolicLink) return p;
    const t = fs.readlink(p);
    p = posix.resolve(posix.dirname(p), t);
  }
  throw Object.assign(new Error(`cannot follow symlink ${p}: too many levels of symbolic links`), { code: 'ELOOP' });
}

/** systemd's unit_validate_alias_symlink: same type, and a template only aliases a template. */
function aliasCompatible(src: string, dst: string): boolean {
  const s = splitUnitName(src);
  const d = splitUnitName(dst);
  if (!s || !d || s.suffix !== d.suffix) return false;
  if (s.template) return d.template;
  if (s.instance !== null) return d.instance !== null || d.template;
  return !d.template && d.instance === null;
}

/** Reads every search directory (highest priority first; the first entry for a name wins). */
export function buildIndex(fs: UnitFs, searchPaths: string[]): UnitIndex {
  const idx: UnitIndex = { fs, searchPaths, ids: new Map(), listings: new Map() };
  for (const dir of searchPaths) {
    for (const entry of listDir(idx, dir) ?? []) {
      if (!isValidUnitName(entry) || idx.ids.has(entry)) continue;
      const p = posix.join(dir, entry);
      const st = fs.lstat(p);
      if (!st || st.isDirectory) continue;
      if (!st.isSymbolicLink) {
        if (st.isFile) idx.ids.set(entry, { kind: 'file', path: p });
        continue;
      }
      const finalPath = chaseLink(fs, p);
      const first = posix.basename(fs.readlink(p));
      if (finalPath === '/dev/null') idx.ids.set(entry, { kind: 'masked', path: p });
      else if (first !== entry && isValidUnitName(first)) {
        if (aliasCompatible(entry, first)) idx.ids.set(entry, { kind: 'alias', target: first, finalPath });
      } else idx.ids.set(entry, { kind: 'file', path: finalPath }); // a linked unit file from elsewhere
    }
    // Quadlet: NAME.container is NAME.service (units/quadlet.ts)
    indexContainerUnits(idx, dir, listDir(idx, dir) ?? []);
  }
  return idx;
}

/** Resolves a unit name to its fragment through aliases and templates; null when nothing provides it. */
export function resolveName(idx: UnitIndex, name: string, depth = 0): Resolved | null {
  if (depth > 16) return null;
  const e = idx.ids.get(name);
  if (e && e.kind !== 'alias') return { name, fragment: e.path, masked: e.kind === 'masked', aliases: [] };
  if (e?.kind === 'alias') {
    const inst = instanceOf(name);
    const target = inst !== null && isTemplate(e.target) ? instantiate(e.target, inst) : e.target;
    if (target !== name) {
      const r = resolveName(idx, target, depth + 1);
      if (r) return { ...r, aliases: [...new Set([...r.aliases, name])] };
      // An alias of a file outside the search path: that file, under its own name.
      return { name: target, fragment: e.finalPath, masked: false, aliases: [name] };
    }
  }
  const tpl = templateOf(name);
  if (tpl) {
    const t = resolveName(idx, tpl, depth + 1);
    if (!t) return null;
    const canonical = t.masked ? name : instantiate(t.name, instanceOf(name)!);
    return { name: canonical, fragment: t.fragment, masked: t.masked, aliases: canonical === name ? [] : [name] };
  }
  return null;
}

/** Every other name in the search path that resolves to `canonical` (its alias symlinks). */
export function aliasesOf(idx: UnitIndex, canonical: string): string[] {
  const out: string[] = [];
  for (const [n, e] of idx.ids) {
    if (e.kind !== 'alias') continue;
    let candidate = n;
    if (isTemplate(n) && isInstance(canonical)) candidate = instantiate(n, instanceOf(canonical)!);
    else if (isTemplate(n) !== isTemplate(canonical)) continue;
    if (candidate !== canonical && resolveName(idx, candidate)?.name === canonical) out.push(candidate);
  }
  return out;
}

/** systemd's unit_file_find_dirs: NAME.SUFFIX, the template's, and each dash-prefix's (`foo-.service.d`). */
function findDirs(idx: UnitIndex, dir: string, name: string, suffix: string, out: string[]): void {
  const p = posix.join(dir, name + suffix);
  if (listDir(idx, p) && !out.includes(p)) out.push(p);
  const tpl = templateOf(name);
  if (tpl) findDirs(idx, dir, tpl, suffix, out);
  const parts = splitUnitName(name);
  if (!parts) return; // a type-level name such as "service"
  let prefix = parts.prefix;
  let chopped = false;
  for (;;) {
    const dash = prefix.lastIndexOf('-');
    if (dash <= 0) return;
    if (dash + 1 < prefix.length || chopped) {
      prefix = prefix.slice(0, dash + 1);
      break;
    }
    prefix = prefix.slice(0, dash); // a trailing dash is chopped once: "foo-" looks for "foo"'s parents
    chopped = true;
  }
  const built = parts.instance !== null ? `${prefix}@${parts.instance}.${parts.suffix}` : `${prefix}.${parts.suffix}`;
  if (isValidUnitName(built)) findDirs(idx, dir, built, suffix, out);
}

/**
 * The entries of the `.d`/`.wants`/`.requires` directories of a unit, as systemd's conf_files_list:
 * one per file name (the first directory in priority order wins), sorted by file name.
 */
export function dropInEntries(idx: UnitIndex, names: string[], suffix: string, fileSuffix: string | null): string[] {
  const dirs: string[] = [];
  for (const n of names) for (const sp of idx.searchPaths) findDirs(idx, sp, n, suffix, dirs);
  const type = splitUnitName(names[0])?.suffix;
  for (const sp of idx.searchPaths) {
    // the type-level directory ("service.d") comes last: most generic
    const p = posix.join(sp, `${type}${suffix}`);
    if (type && listDir(idx, p) && !dirs.includes(p)) dirs.push(p);
  }
  const byName = new Map<string, string>();
  for (const d of dirs) {
    for (const f of listDir(idx, d) ?? []) {
      if (f.startsWith('.') || (fileSuffix && !f.endsWith(fileSuffix)) || byName.has(f)) continue;
      byName.set(f, posix.join(d, f));
    }
  }
  return [...byName.keys()].sort().map((f) => byName.get(f)!);
}
