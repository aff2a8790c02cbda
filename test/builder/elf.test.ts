import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elfNeeded } from '../../builder/elf.js';
import { missingLibraries } from '../../builder/check-libs.js';

describe('builder/elf and check-libs', () => {
  it('reads DT_NEEDED and PT_INTERP as readelf does', () => {
    const info = elfNeeded(readFileSync('/usr/bin/ls'));
    assert.ok(info);
    const readelf = execFileSync('readelf', ['-d', '/usr/bin/ls'], { encoding: 'utf8' });
    const expected = [...readelf.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    assert.deepEqual(info.needed, expected);
    assert.equal(info.interp, '/lib64/ld-linux-x86-64.so.2');
  });

  it('says a static binary needs nothing and a text file is not ELF', () => {
    assert.deepEqual(elfNeeded(readFileSync('/bin/busybox'))?.needed ?? [], []);
    assert.equal(elfNeeded(Buffer.from('#!/bin/sh\necho hi\n')), null);
  });

  it('finds the libraries a tree lacks, and none once they are there', () => {
    const tree = mkdtempSync(join(tmpdir(), 'keel-libs-'));
    try {
      mkdirSync(join(tree, 'usr/bin'), { recursive: true });
      copyFileSync('/usr/bin/ls', join(tree, 'usr/bin/ls'));
      const missing = missingLibraries(tree);
      assert.ok(
        missing.some((m) => m.file === '/usr/bin/ls' && m.lib === 'libc.so.6'),
        JSON.stringify(missing),
      );
      mkdirSync(join(tree, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
      for (const m of missing)
        copyFileSync(join('/usr/lib/x86_64-linux-gnu', m.lib), join(tree, 'usr/lib/x86_64-linux-gnu', m.lib));
      // The copied libraries need their own dependencies too; copy until closed.
      for (let left = missingLibraries(tree); left.length; left = missingLibraries(tree)) {
        for (const m of left)
          copyFileSync(join('/usr/lib/x86_64-linux-gnu', m.lib), join(tree, 'usr/lib/x86_64-linux-gnu', m.lib));
      }
      assert.deepEqual(missingLibraries(tree), []);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
