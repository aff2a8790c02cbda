// The loader's side of Quadlet `.container` units (units/quadlet.ts translates them): in the
// index, NAME.container is the unit NAME.service (load-index.ts buildIndex calls
// indexContainerUnits); read, its text is the service it generates (load.ts calls parseUnitFile).
import { posix } from 'node:path';
import type { Assignment, Diagnostic } from './types.js';
import type { UnitIndex } from './load-index.js';
import { parseUnitText } from './parse.js';
import { splitUnitName } from './names.js';
import { containerToService, type QuadletOptions } from './quadlet.js';

/**
 * The loader's parse of a unit file (load.ts): parseUnitText, except that a .container fragment
 * is read as the service it generates, calling the CLI as `opts` says (LoadOptions.quadlet).
 */
export function parseUnitFile(
  text: string,
  file: string,
  opts: QuadletOptions = {},
): { assignments: Assignment[]; diagnostics: Diagnostic[] } {
  if (!file.endsWith('.container')) return parseUnitText(text, file);
  const { assignments, diagnostics } = containerToService(file, text, opts);
  return { assignments, diagnostics };
}

/**
 * The service a .container name stands for (`web.container` → `web.service`, `web@.container` → `web@.service`), or
 * null.
 */
export function containerServiceName(name: string): string | null {
  return splitUnitName(name)?.suffix === 'container' ? `${name.slice(0, -'.container'.length)}.service` : null;
}

/**
 * systemd's alias rule for a link NAME → target: a template only aliases a template, an instance an instance or
 * template.
 */
function aliasFits(name: string, target: string): boolean {
  const s = splitUnitName(name);
  const d = splitUnitName(target);
  if (!s || !d) return false;
  if (s.template) return d.template;
  if (s.instance !== null) return d.instance !== null || d.template;
  return !d.template && d.instance === null;
}

/**
 * The index side of the loader hook, run by buildIndex after each search directory: each
 * NAME.container of `dir` is indexed as NAME.service with the .container as its fragment, unless
 * a NAME.service (or its mask) of this or a higher-priority directory is there already; the
 * .container name itself is no unit. A link NAME.service → X.container (what `keel enable` makes
 * for Alias=, or a container file linked in from elsewhere) is indexed too.
 */
export function indexContainerUnits(idx: UnitIndex, dir: string, entries: string[]): void {
  for (const entry of entries) {
    const service = containerServiceName(entry);
    if (service) {
      const e = idx.ids.get(entry);
      if (!e) continue;
      idx.ids.delete(entry);
      if (idx.ids.has(service)) continue;
      if (e.kind !== 'alias') idx.ids.set(service, e);
      else idx.ids.set(service, { ...e, target: containerServiceName(e.target) ?? e.target });
    } else if (!idx.ids.has(entry) && splitUnitName(entry)?.suffix === 'service') {
      const p = posix.join(dir, entry);
      if (!idx.fs.lstat(p)?.isSymbolicLink) continue;
      const link = idx.fs.readlink(p);
      const target = containerServiceName(posix.basename(link));
      const finalPath = posix.resolve(dir, link);
      if (target === entry) idx.ids.set(entry, { kind: 'file', path: finalPath });
      else if (target && aliasFits(entry, target)) idx.ids.set(entry, { kind: 'alias', target, finalPath });
    }
  }
}
