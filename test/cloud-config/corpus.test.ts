// Every snippet of the corpus (coreos-cloudinit's own validator and parser test inputs) gives the
// whole `--validate` report EXPECTED-VALIDATOR.tsv records: kinds, messages and line numbers.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatReport, validateCloudConfig } from '../../cloud-config/validate.js';
import { CLOUD_CORPUS } from './corpus-path.js';

interface Row {
  file: string;
  status: string;
  entries: string[];
  prepend: boolean;
}

const ROWS: Row[] = readFileSync(join(CLOUD_CORPUS, 'EXPECTED-VALIDATOR.tsv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => {
    const [file, status, entries, mode] = l.split('\t');
    return {
      file,
      status,
      entries: entries === '-' ? [] : entries.split(/; (?=line \d+: )/),
      prepend: mode.includes("'#cloud-config\\n' prepended"),
    };
  });

describe('cloud-config: coreos-cloudinit validator corpus', () => {
  it('has the 88 snippets the README describes, each on disk', () => {
    assert.equal(ROWS.length, 88);
    for (const r of ROWS) assert.ok(existsSync(join(CLOUD_CORPUS, r.file)), r.file);
  });
  for (const r of ROWS) {
    it(`${r.file} (${r.status})`, () => {
      const bytes = readFileSync(join(CLOUD_CORPUS, r.file));
      const input = r.prepend ? Buffer.concat([Buffer.from('#cloud-config\n'), bytes]) : bytes;
      const v = validateCloudConfig(input);
      assert.deepEqual(formatReport(v.report).split('\n').filter(Boolean), r.entries);
      // A document that parsed gives a typed config; anything else gives none.
      assert.equal(v.config === null, !(v.kind === 'cloud-config' && r.status !== 'yaml-error'));
    });
  }
});
