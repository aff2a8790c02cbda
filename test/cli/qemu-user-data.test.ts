import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';

describe('keel qemu --user-data', () => {
  it('validates before booting and refuses a document with errors, naming file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-qud-'));
    try {
      const bad = join(dir, 'bad.yml');
      writeFileSync(bad, '#cloud-config\nwrite_files:\n  - path: /etc/x\n    encoding: nope\n    content: x\n');
      const r = spawnSync(
        process.execPath,
        [join(repoRoot(), 'bin/keel'), 'qemu', '--image', join(dir, 'missing.img'), '--user-data', bad],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`${bad}:4:5: error: invalid value nope`));
      assert.match(r.stderr, /not booting/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
