// The root-tree executor: every op on a temp tree, the promise that a cp -al tree never writes
// through to the cache, and the shell each op prints.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyFsPlan, opToShell } from '../../builder/fs-plan.js';

const mode = (p: string) => lstatSync(p).mode & 0o7777;

describe('builder/fs-plan', () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-fsplan-'));
    root = join(dir, 'root');
    mkdirSync(root);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('applyFsPlan', () => {
    it('makes directories with their modes, parents included', () => {
      applyFsPlan(root, [
        { op: 'mkdir', path: 'var/lib/keel' },
        { op: 'mkdir', path: 'root', mode: 0o700 },
        { op: 'mkdir', path: 'tmp', mode: 0o1777 },
      ]);
      assert.ok(statSync(join(root, 'var/lib/keel')).isDirectory());
      assert.equal(mode(join(root, 'var/lib/keel')), 0o755);
      assert.equal(mode(join(root, 'root')), 0o700);
      assert.equal(mode(join(root, 'tmp')), 0o1777);
    });

    it('sets the mode of a directory that already exists', () => {
      mkdirSync(join(root, 'etc'), { mode: 0o777 });
      applyFsPlan(root, [{ op: 'mkdir', path: 'etc', mode: 0o750 }]);
      assert.equal(mode(join(root, 'etc')), 0o750);
    });

    it('makes symlinks, replacing a link, file or directory already there', () => {
      mkdirSync(join(root, 'lib/old'), { recursive: true });
      writeFileSync(join(root, 'lib/old/x'), 'x');
      symlinkSync('elsewhere', join(root, 'bin'));
      writeFileSync(join(root, 'sbin'), 'file');
      applyFsPlan(root, [
        { op: 'symlink', path: 'bin', target: 'usr/bin' },
        { op: 'symlink', path: 'sbin', target: 'usr/sbin' },
        { op: 'symlink', path: 'lib', target: 'usr/lib' },
        { op: 'symlink', path: 'etc/os-release', target: '../usr/lib/os-release' },
      ]);
      assert.equal(readlinkSync(join(root, 'bin')), 'usr/bin');
      assert.equal(readlinkSync(join(root, 'sbin')), 'usr/sbin');
      assert.equal(readlinkSync(join(root, 'lib')), 'usr/lib');
      assert.equal(readlinkSync(join(root, 'etc/os-release')), '../usr/lib/os-release');
    });

    it('writes files with content and mode (0644 by default)', () => {
      applyFsPlan(root, [
        { op: 'write', path: 'etc/hostname', content: 'keel\n' },
        { op: 'write', path: 'etc/shadow', content: Buffer.from('root:*:1::::::\n'), mode: 0o600 },
        { op: 'write', path: 'usr/lib/keel/hook', content: '#!/bin/sh\n', mode: 0o755 },
      ]);
      assert.equal(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'keel\n');
      assert.equal(mode(join(root, 'etc/hostname')), 0o644);
      assert.equal(readFileSync(join(root, 'etc/shadow'), 'utf8'), 'root:*:1::::::\n');
      assert.equal(mode(join(root, 'etc/shadow')), 0o600);
      assert.equal(mode(join(root, 'usr/lib/keel/hook')), 0o755);
    });

    it('copies files, setting the mode when given', () => {
      const src = join(dir, 'init.mjs');
      writeFileSync(src, 'console.log(1)\n', { mode: 0o640 });
      applyFsPlan(root, [
        { op: 'copy', path: 'usr/lib/keel/init.mjs', from: src, mode: 0o644 },
        { op: 'copy', path: 'usr/lib/keel/again.mjs', from: src },
      ]);
      assert.equal(readFileSync(join(root, 'usr/lib/keel/init.mjs'), 'utf8'), 'console.log(1)\n');
      assert.equal(mode(join(root, 'usr/lib/keel/init.mjs')), 0o644);
      assert.equal(readFileSync(join(root, 'usr/lib/keel/again.mjs'), 'utf8'), 'console.log(1)\n');
      assert.notEqual(statSync(join(root, 'usr/lib/keel/init.mjs')).ino, statSync(src).ino);
    });

    it('removes files and whole trees, and a missing path is no error', () => {
      mkdirSync(join(root, 'usr/share/doc/libc6'), { recursive: true });
      writeFileSync(join(root, 'usr/share/doc/libc6/copyright'), 'c');
      writeFileSync(join(root, 'usr/share/keep'), 'k');
      applyFsPlan(root, [
        { op: 'remove', path: 'usr/share/doc' },
        { op: 'remove', path: 'usr/share/locale' },
      ]);
      assert.ok(!existsSync(join(root, 'usr/share/doc')));
      assert.deepEqual(readdirSync(join(root, 'usr/share')), ['keep']);
    });

    it('applies ops in order', () => {
      applyFsPlan(root, [
        { op: 'write', path: 'a/b', content: '1' },
        { op: 'remove', path: 'a' },
        { op: 'write', path: 'a/c', content: '2' },
      ]);
      assert.deepEqual(readdirSync(join(root, 'a')), ['c']);
    });

    // The cache-protection promise: the root tree is a hard-link copy (cp -al) of a cached tree.
    describe('on a tree of hard links into a cache', () => {
      let cache: string;
      beforeEach(() => {
        cache = join(dir, 'cache');
        mkdirSync(join(cache, 'etc'), { recursive: true });
        mkdirSync(join(root, 'etc'));
        for (const f of ['hostname', 'passwd', 'motd']) {
          writeFileSync(join(cache, 'etc', f), `cached ${f}\n`, { mode: 0o644 });
          linkSync(join(cache, 'etc', f), join(root, 'etc', f));
        }
        assert.equal(statSync(join(cache, 'etc/hostname')).nlink, 2);
      });

      it('write leaves the cached file as it was', () => {
        applyFsPlan(root, [{ op: 'write', path: 'etc/hostname', content: 'mine\n', mode: 0o600 }]);
        assert.equal(readFileSync(join(root, 'etc/hostname'), 'utf8'), 'mine\n');
        assert.equal(readFileSync(join(cache, 'etc/hostname'), 'utf8'), 'cached hostname\n');
        assert.equal(mode(join(cache, 'etc/hostname')), 0o644);
        assert.equal(statSync(join(cache, 'etc/hostname')).nlink, 1);
      });

      it('copy leaves the cached file as it was', () => {
        const src = join(dir, 'passwd');
        writeFileSync(src, 'root:x:0:0::/root:/bin/sh\n');
        applyFsPlan(root, [{ op: 'copy', path: 'etc/passwd', from: src, mode: 0o600 }]);
        assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
        assert.equal(readFileSync(join(cache, 'etc/passwd'), 'utf8'), 'cached passwd\n');
        assert.equal(mode(join(cache, 'etc/passwd')), 0o644);
      });

      it('symlink and remove leave the cached file as it was', () => {
        applyFsPlan(root, [
          { op: 'symlink', path: 'etc/motd', target: '/run/motd' },
          { op: 'remove', path: 'etc/passwd' },
        ]);
        assert.equal(readlinkSync(join(root, 'etc/motd')), '/run/motd');
        assert.equal(readFileSync(join(cache, 'etc/motd'), 'utf8'), 'cached motd\n');
        assert.equal(readFileSync(join(cache, 'etc/passwd'), 'utf8'), 'cached passwd\n');
      });

      it('write over a symlink into the cache replaces the link, not its target', () => {
        symlinkSync(join(cache, 'etc/hostname'), join(root, 'etc/name-link'));
        applyFsPlan(root, [{ op: 'write', path: 'etc/name-link', content: 'new\n' }]);
        assert.ok(lstatSync(join(root, 'etc/name-link')).isFile());
        assert.equal(readFileSync(join(cache, 'etc/hostname'), 'utf8'), 'cached hostname\n');
      });
    });
  });

  describe('opToShell', () => {
    it('prints each op as a shell command', () => {
      assert.equal(opToShell({ op: 'mkdir', path: 'var/lib/keel' }), "mkdir -p -m 0755 'var/lib/keel'");
      assert.equal(opToShell({ op: 'mkdir', path: 'tmp', mode: 0o1777 }), "mkdir -p -m 1777 'tmp'");
      assert.equal(
        opToShell({ op: 'symlink', path: 'bin', target: 'usr/bin' }),
        "mkdir -p '.' && rm -rf 'bin' && ln -s 'usr/bin' 'bin'",
      );
      assert.equal(
        opToShell({ op: 'write', path: 'etc/hostname', content: 'keel\n', mode: 0o600 }),
        "mkdir -p 'etc' && rm -f 'etc/hostname' && printf %s 'keel\n'... > 'etc/hostname' && chmod 0600 'etc/hostname'",
      );
      assert.equal(
        opToShell({ op: 'copy', path: 'a', from: '/src/a' }),
        "mkdir -p '.' && rm -f 'a' && cp '/src/a' 'a'",
      );
      assert.equal(
        opToShell({ op: 'copy', path: 'a', from: '/src/a', mode: 0o755 }),
        "mkdir -p '.' && rm -f 'a' && cp '/src/a' 'a' && chmod 0755 'a'",
      );
      assert.equal(opToShell({ op: 'remove', path: 'usr/share/doc' }), "rm -rf 'usr/share/doc'");
    });

    it('cuts long content to 40 characters', () => {
      const out = opToShell({ op: 'write', path: 'f', content: 'x'.repeat(100) });
      assert.equal(out, `mkdir -p '.' && rm -f 'f' && printf %s '${'x'.repeat(40)}'... > 'f' && chmod 0644 'f'`);
    });

    it('quotes paths so the shell takes them literally', () => {
      const name = "it's a $(touch pwned); file";
      writeFileSync(join(root, name), 'x');
      const r = spawnSync('/bin/sh', ['-c', opToShell({ op: 'remove', path: name })], { cwd: root, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readdirSync(root), []);
    });

    it('prints mkdir, symlink, copy and remove that do what applyFsPlan does', () => {
      const src = join(dir, 'src file');
      writeFileSync(src, 'data');
      const ops = [
        { op: 'mkdir', path: 'usr/lib', mode: 0o700 },
        { op: 'mkdir', path: 'etc' },
        { op: 'symlink', path: 'lib', target: 'usr/lib' },
        { op: 'copy', path: 'etc/x y', from: src, mode: 0o600 },
        { op: 'mkdir', path: 'gone/deep' },
        { op: 'remove', path: 'gone' },
      ] as const;
      const shellRoot = join(dir, 'shell');
      mkdirSync(shellRoot);
      const r = spawnSync('/bin/sh', ['-ec', ops.map(opToShell).join('\n')], { cwd: shellRoot, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      applyFsPlan(root, [...ops]);
      const listing = (base: string) =>
        ['usr', 'usr/lib', 'etc', 'lib', 'etc/x y', 'gone'].map((p) => {
          const f = join(base, p);
          const st = lstatSync(f, { throwIfNoEntry: false });
          if (!st) return `${p}: absent`;
          return (
            `${p}: ` +
            `${
              st.isSymbolicLink()
                ? `-> ${readlinkSync(f)}`
                : st.isDirectory()
                  ? `dir ${mode(f).toString(8)}`
                  : `file ${mode(f).toString(8)}` + ` ${readFileSync(f, 'utf8')}`
            }`
          );
        });
      assert.deepEqual(listing(shellRoot), listing(root));
    });
  });
});
