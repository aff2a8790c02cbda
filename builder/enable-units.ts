// Enabling units at build time: the links [Install] asks for, made under /usr/lib/systemd/system
// of the root tree (vendor presets; /etc stays the machine's own).
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { enableLinks } from '../units/install.js';
import { loadUnit } from '../units/load.js';
import { realUnitFs } from '../units/real-fs.js';
import { BuildError } from './errors.js';

/** Where vendor units live inside the image. */
export const VENDOR_UNIT_DIR = 'usr/lib/systemd/system';

/** Enables `names` in `tree`; links are relative, so they hold inside the image. Returns the links made. */
export function enableInTree(tree: string, names: string[]): string[] {
  const dir = join(tree, VENDOR_UNIT_DIR);
  const opts = { searchPaths: [dir] };
  const fs = realUnitFs();
  const made: string[] = [];
  for (const name of names) {
    let links;
    try {
      const unit = loadUnit(name, fs, opts);
      const instance = /@(.+)\.[a-z]+$/.exec(name)?.[1];
      links = enableLinks(unit, { configDir: dir, ...(instance ? { instance } : {}) }, (n) => {
        try {
          return loadUnit(n, fs, opts);
        } catch {
          return undefined;
        }
      }).links;
    } catch (e) {
      throw new BuildError('EUNIT', `cannot enable ${name} in the image: ${(e as Error).message}`);
    }
    for (const l of links) {
      mkdirSync(dirname(l.path), { recursive: true });
      rmSync(l.path, { force: true });
      symlinkSync(relative(dirname(l.path), l.target), l.path);
      made.push(relative(tree, l.path));
    }
  }
  return made;
}
