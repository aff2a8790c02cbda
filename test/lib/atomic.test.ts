// writeAtomic on a real file system, with its calls recorded: the order that makes it atomic and
// durable (write, fsync, rename, fsync of the directory), and writers that overlap.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAtomic, type AtomicFs } from '../../lib/atomic.js';
import { recordingFs } from './recording-fs.js';

describe('lib/atomic writeAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-atomic-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates and replaces a file, with its mode, and leaves no temp file', () => {
    const file = join(dir, 'sub', 'f.json');
    writeAtomic(file, 'one\n');
    writeAtomic(file, Buffer.from('two\n'), { mode: 0o600 });
    assert.equal(readFileSync(file, 'utf8'), 'two\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(dir, 'sub')), ['f.json']);
  });

  it('writes and fsyncs a temp file in the same directory, renames it, then fsyncs the directory', () => {
    const file = join(dir, 'f');
    const { fs, calls } = recordingFs();
    writeAtomic(file, 'data', { fs });
    const tmp = calls.find((c) => c.call.startsWith('open '))!.path;
    assert.match(tmp, new RegExp(`^${dir}/\\.f\\.keel-${process.pid}-[0-9a-f]{12}$`));
    assert.deepEqual(
      calls.map((c) => [c.call, c.path, ...(c.to ? [c.to] : [])]),
      [
        ['mkdir', dir],
        ['open wx', tmp],
        ['write', tmp],
        ['fsync', tmp],
        ['close', tmp],
        ['rename', tmp, file],
        ['open r', dir],
        ['fsync', dir],
        ['close', dir],
      ],
    );
  });

  it('a second writer starting in the middle of a first one uses a temp file of its own; both land', () => {
    const file = join(dir, 'f');
    let nested = false;
    const { fs, calls } = recordingFs(() => {
      if (nested) return;
      nested = true;
      writeAtomic(file, 'inner', { fs });
    });
    writeAtomic(file, 'outer', { fs });
    const temps = calls.filter((c) => c.call === 'rename').map((c) => c.path);
    assert.equal(new Set(temps).size, 2, `two temp names: ${temps.join(', ')}`);
    assert.equal(readFileSync(file, 'utf8'), 'outer', 'the writer that renamed last wins');
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('a failed write keeps the old file and removes its temp file', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'old');
    const failing: AtomicFs = {
      ...recordingFs().fs,
      fsyncSync: () => {
        throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      },
    };
    assert.throws(() => writeAtomic(file, 'new', { fs: failing }), { code: 'EIO' });
    assert.equal(readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['f']);
  });
});
