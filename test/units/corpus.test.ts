// The Debian 12 units of the corpus: every file interprets without errors (warnings allowed), and
// loaded from a temp copy laid out like /usr/lib/systemd/system, the mask and the alias resolve.
import assert from 'node:assert/strict';
import {
  chmodSync,
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interpretUnit } from '../../units/interpret.js';
import { loadAll, loadUnit, type LoadOptions } from '../../units/load.js';
import { instantiate, isTemplate } from '../../units/names.js';
import { parseUnitText } from '../../units/parse.js';
import { realUnitFs } from '../../units/real-fs.js';
import type { Diagnostic } from '../../units/types.js';
import { CORPUS } from './corpus-path.js';

const HOST = {
  hostname: 'keel',
  machineId: '0123456789abcdef0123456789abcdef',
  bootId: 'fedcba9876543210fedcba9876543210',
  runtimeDir: '/run',
};
const errorsOf = (ds: Diagnostic[]) =>
  ds.filter((d) => d.severity === 'error').map((d) => `${d.file}:${d.line}: ${d.message}`);

/** Files the corpus stores as their link target (SOURCES.tsv: "SYMLINK -> target"). */
const SYMLINKS = new Map(
  readFileSync(`${CORPUS}SOURCES.tsv`, 'utf8')
    .split('\n')
    .flatMap((l) => {
      const m = /SYMLINK -> (\S+)/.exec(l);
      return m ? [[l.split('\t')[0], m[1]] as const] : [];
    }),
);
const PACKAGES = readdirSync(CORPUS).filter((d) => d.startsWith('debian-'));
const FILES = PACKAGES.flatMap((p) => readdirSync(CORPUS + p).map((f) => `${p}/${f}`));
const UNIT_FILES = FILES.filter((f) => statSync(CORPUS + f).isFile() && !SYMLINKS.has(f));
const DROP_INS = FILES.filter((f) => statSync(CORPUS + f).isDirectory()).flatMap((d) =>
  readdirSync(CORPUS + d).map((f) => `${d}/${f}`),
);

/** Gives every directory under `dir` (not following symlinks) its owner's write bit back. */
function writableDirs(dir: string): void {
  chmodSync(dir, lstatSync(dir).mode | 0o700);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) writableDirs(join(dir, e.name));
}

describe('units: Debian corpus', () => {
  it('has the files the README describes', () => {
    assert.equal(UNIT_FILES.length + SYMLINKS.size + DROP_INS.length, 70);
    assert.deepEqual(
      [...SYMLINKS],
      [
        ['debian-systemd/hwclock.service', '/dev/null'],
        ['debian-systemd/default.target', 'graphical.target'],
      ],
    );
  });
  for (const f of UNIT_FILES) {
    const base = f.split('/')[1];
    const names = isTemplate(base) ? [instantiate(base, 'sda1')] : [base]; // systemd never loads a bare template
    it(`${f} interprets without errors${isTemplate(base) ? ' (as an instance)' : ''}`, () => {
      const parsed = parseUnitText(readFileSync(CORPUS + f, 'utf8'), f);
      assert.deepEqual(errorsOf(parsed.diagnostics), []);
      for (const unitName of names) {
        const u = interpretUnit(parsed.assignments, { ...HOST, unitName, fragmentPath: f });
        assert.deepEqual(errorsOf(u.diagnostics), [], unitName);
        assert.ok(u.description.length > 0 || u.type === 'slice', 'a description');
      }
    });
  }
  for (const f of DROP_INS) {
    it(`drop-in ${f} interprets without errors in its assignments`, () => {
      const parsed = parseUnitText(readFileSync(CORPUS + f, 'utf8'), f);
      const unitName = f
        .split('/')[1]
        .replace(/\.d$/, '')
        .replace(/^user-\.slice$/, 'user-1000.slice');
      const u = interpretUnit(parsed.assignments, {
        ...HOST,
        unitName: isTemplate(unitName) ? instantiate(unitName, '1000') : unitName,
      });
      assert.deepEqual(errorsOf([...parsed.diagnostics, ...u.diagnostics.filter((d) => d.line > 0)]), []);
    });
  }
});

describe('units: Debian corpus loaded from a search path', () => {
  let root: string;
  let opts: LoadOptions;
  const fs = realUnitFs();
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'keel-units-'));
    const usr = join(root, 'usr/lib/systemd/system');
    const etc = join(root, 'etc/systemd/system');
    mkdirSync(usr, { recursive: true });
    mkdirSync(join(etc, 'multi-user.target.wants'), { recursive: true });
    for (const f of FILES) {
      const dest = join(usr, f.split('/')[1]);
      if (SYMLINKS.has(f)) symlinkSync(SYMLINKS.get(f)!, dest);
      else cpSync(CORPUS + f, dest, { recursive: true });
    }
    // An admin's overrides: enable two units, replace a drop-in of the same name, mask another.
    symlinkSync(join(usr, 'postgresql.service'), join(etc, 'multi-user.target.wants/postgresql.service'));
    symlinkSync(join(usr, 'getty@.service'), join(etc, 'multi-user.target.wants/getty@tty1.service'));
    mkdirSync(join(etc, 'rc-local.service.d'));
    writeFileSync(join(etc, 'rc-local.service.d/debian.conf'), '[Service]\nStandardOutput=null\n');
    mkdirSync(join(etc, 'user@.service.d'));
    symlinkSync('/dev/null', join(etc, 'user@.service.d/10-login-barrier.conf'));
    opts = { searchPaths: [etc, join(root, 'run/systemd/system'), usr], specifiers: HOST };
  });
  // The corpus is read-only, and so are the directories cpSync copied from it: as any user but root,
  // nothing inside them could be unlinked until they are writable again.
  after(() => {
    writableDirs(root);
    rmSync(root, { recursive: true, force: true });
  });

  it('detects the masked unit (a symlink to /dev/null)', () => {
    const u = loadUnit('hwclock.service', fs, opts);
    assert.equal(u.masked, true);
    assert.deepEqual(u.diagnostics, []);
  });
  it('resolves the alias symlink default.target to graphical.target', () => {
    const u = loadUnit('default.target', fs, opts);
    assert.equal(u.name, 'graphical.target');
    assert.deepEqual(u.aliases, ['default.target']);
    assert.deepEqual(u.deps.requires, ['multi-user.target']);
    assert.deepEqual(loadUnit('graphical.target', fs, opts).aliases, ['default.target']);
  });
  it('lets an /etc drop-in replace the /usr one of the same name, and an /etc /dev/null link mask one', () => {
    const rc = loadUnit('rc-local.service', fs, opts);
    assert.deepEqual(rc.dropInPaths, [join(root, 'etc/systemd/system/rc-local.service.d/debian.conf')]);
    assert.equal(rc.service!.standardOutput, 'null');
    assert.deepEqual(rc.deps.after, ['network.target'], 'the /usr drop-in adding network-online.target is overridden');
    const user = loadUnit('user@1000.service', fs, opts);
    assert.deepEqual(user.dropInPaths, []);
    assert.equal(user.service!.user, '1000');
  });
  it('loads every unit, with links from .wants, and none has an error', () => {
    const all = loadAll(fs, opts);
    const names = [...all.keys()];
    assert.ok(
      names.includes('getty@tty1.service') && names.includes('hwclock.service') && !names.includes('default.target'),
    );
    assert.ok(!names.some(isTemplate), 'templates are loaded through their instances');
    assert.deepEqual(all.get('multi-user.target')!.deps.wants, ['getty@tty1.service', 'postgresql.service']);
    assert.deepEqual(
      [...all.values()].flatMap((u) => errorsOf(u.diagnostics)),
      [],
    );
    assert.equal(
      all.size,
      UNIT_FILES.filter((f) => !isTemplate(f.split('/')[1]) && !f.endsWith('.automount')).length + 2,
    );
  });
});
