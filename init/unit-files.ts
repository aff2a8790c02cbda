// enable, disable, mask, unmask and is-enabled over /etc/systemd/system, using the pure rules of
// units/install.ts; the manager reloads afterwards.
import { KeelError } from '../lib/errors.js';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { InitConfig } from './config.js';
import type { UnitConfig } from '../units/types.js';
import { loadUnit, type UnitFs } from '../units/load.js';
import { disableLinks, enableLinks, isEnabled, type UnitLink } from '../units/install.js';

/** One change made on disk, reported to the user like systemctl does. */
export type FileChange = { type: 'symlink'; path: string; target: string } | { type: 'unlink'; path: string };

/** Every symlink under the config dir and its .wants/.requires subdirectories. */
export function listLinks(configDir: string): UnitLink[] {
  const out: UnitLink[] = [];
  const scan = (dir: string, depth: number) => {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) out.push({ path: p, target: readlinkSync(p) });
      else if (st.isDirectory() && depth === 0 && /\.(wants|requires)$/.test(n)) scan(p, 1);
    }
  };
  scan(configDir, 0);
  return out;
}

/** Unit-file operations for the manager. */
export class UnitFiles {
  constructor(
    private cfg: InitConfig,
    private fs: UnitFs,
    private units: () => Map<string, UnitConfig>,
    private lookup: (n: string) => UnitConfig | undefined,
  ) {}

  /** enable: the links [Install] asks for. */
  enable(name: string): FileChange[] {
    const unit = this.lookupOrTemplate(name);
    const instance = /@(.+)\.[a-z]+$/.exec(name)?.[1];
    const { links } = enableLinks(unit, { configDir: this.cfg.configDir, ...(instance ? { instance } : {}) }, (n) =>
      this.lookupOrTemplateSafe(n),
    );
    const changes: FileChange[] = [];
    for (const l of links) {
      let existing: string | null = null;
      try {
        existing = readlinkSync(l.path);
      } catch {
        /* none */
      }
      if (existing === l.target) continue;
      mkdirSync(dirname(l.path), { recursive: true });
      rmSync(l.path, { force: true });
      symlinkSync(l.target, l.path);
      changes.push({ type: 'symlink', path: l.path, target: l.target });
    }
    return changes;
  }

  /** disable: remove every link naming the unit. */
  disable(name: string): FileChange[] {
    const unit = this.lookupOrTemplate(name);
    const paths = disableLinks(unit, { configDir: this.cfg.configDir }, listLinks(this.cfg.configDir), (n) =>
      this.lookupOrTemplateSafe(n),
    );
    for (const p of paths) rmSync(p, { force: true });
    return paths.map((path) => ({ type: 'unlink', path }));
  }

  /** mask: a link to /dev/null in the config dir, which wins over every other unit file. */
  mask(name: string): FileChange[] {
    const path = join(this.cfg.configDir, name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      /* none */
    }
    if (st && !st.isSymbolicLink())
      throw new KeelError('EEXIST', `cannot mask ${name}: ${path} is a unit file, remove it first`, { path });
    mkdirSync(this.cfg.configDir, { recursive: true });
    rmSync(path, { force: true });
    symlinkSync('/dev/null', path);
    return [{ type: 'symlink', path, target: '/dev/null' }];
  }

  /** unmask: remove the /dev/null link. */
  unmask(name: string): FileChange[] {
    const path = join(this.cfg.configDir, name);
    try {
      if (readlinkSync(path) !== '/dev/null') return [];
    } catch {
      return [];
    }
    rmSync(path, { force: true });
    return [{ type: 'unlink', path }];
  }

  /** is-enabled for status and the is-enabled verb. */
  enabledState(name: string): string {
    try {
      // Links anywhere in the search path count: the image enables its units under /usr/lib.
      return isEnabled(
        name,
        this.cfg.unitPath.flatMap((d) => listLinks(d)),
        (n) => this.lookupOrTemplateSafe(n),
      );
    } catch {
      return this.lookup(name)?.masked ? 'masked' : 'static';
    }
  }

  private lookupOrTemplateSafe(name: string): UnitConfig | undefined {
    const known = this.lookup(name) ?? this.units().get(name.replace(/@[^.]*\./, '@.'));
    if (known) return known;
    // Templates are not in the loaded map (only their instances are): read the file.
    const opts = { searchPaths: this.cfg.unitPath, quadlet: this.cfg.quadlet };
    try {
      return loadUnit(name.replace(/@[^.]*\./, '@.'), this.fs, opts);
    } catch {
      return undefined;
    }
  }

  private lookupOrTemplate(name: string): UnitConfig {
    const u = this.lookupOrTemplateSafe(name);
    if (!u) throw new KeelError('ENOUNIT', `cannot find unit ${name}`);
    return u;
  }
}
