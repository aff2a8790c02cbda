import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  VERITY_BLOCK,
  appendVerity,
  buildVerity,
  parseVeritySuperblock,
  verifyVerity,
  verityTable,
  veritySaltFor,
  verityUuidFor,
} from '../../slots/verity.js';

const SALT = veritySaltFor('test');
const UUID = verityUuidFor('test');

// Deterministic sample data: each block repeats a digest of its index, with every 7th block zero
// (identical blocks must hash identically, and zero blocks are common in real images).
function sampleData(blocks: number): Buffer {
  const data = Buffer.alloc(blocks * VERITY_BLOCK);
  for (let i = 0; i < blocks; i++) {
    if (i % 7 === 3) continue;
    data.fill(createHash('sha256').update(`block ${i}`).digest(), i * VERITY_BLOCK, (i + 1) * VERITY_BLOCK);
  }
  return data;
}

// veritysetup lives in /usr/sbin, which a non-root PATH may lack.
function veritysetup(): string {
  const found = ['veritysetup', '/usr/sbin/veritysetup', '/sbin/veritysetup'].find(
    (p) => !spawnSync(p, ['--version'], { stdio: 'ignore' }).error,
  );
  assert.ok(found, 'veritysetup missing: run make deps (cryptsetup-bin)');
  return found;
}

function flipByte(file: string, offset: number): void {
  const buf = readFileSync(file);
  buf[offset] ^= 0x01;
  writeFileSync(file, buf);
}

describe('builder/verity', function () {
  this.timeout(120000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-verity-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('matches veritysetup format byte for byte', () => {
    // 1 block: no tree; 128: one full hash block; 129: two levels; 16500: three levels (~68 MB).
    for (const blocks of [1, 2, 128, 129, 16500]) {
      it(`${blocks} data block(s): same root hash and hash area`, () => {
        const tool = veritysetup();
        const data = sampleData(blocks);
        const file = join(dir, 'img');
        writeFileSync(file, data);
        const out = execFileSync(
          tool,
          ['format', `--hash-offset=${data.length}`, `--salt=${SALT.toString('hex')}`, `--uuid=${UUID}`, file, file],
          { encoding: 'utf8' },
        );
        const root = /^Root hash:\s+([0-9a-f]{64})$/m.exec(out)?.[1];
        assert.ok(root, `no root hash in veritysetup output:\n${out}`);

        const ours = buildVerity(data, { salt: SALT, uuid: UUID });
        assert.equal(ours.rootHash, root);
        const theirs = readFileSync(file).subarray(data.length);
        assert.equal(ours.hashArea.length, theirs.length, 'hash area size');
        assert.ok(ours.hashArea.equals(theirs), 'hash area bytes differ from veritysetup');
        assert.equal(ours.dataBlocks, blocks);
        assert.equal(ours.hashOffset, data.length);
        assert.ok(ours.salt.equals(SALT));
        assert.equal(ours.uuid, UUID);
      });
    }

    it('an empty salt matches too', () => {
      const data = sampleData(130);
      const file = join(dir, 'img');
      writeFileSync(file, data);
      const out = execFileSync(
        veritysetup(),
        ['format', `--hash-offset=${data.length}`, '--salt=-', `--uuid=${UUID}`, file, file],
        { encoding: 'utf8' },
      );
      const ours = buildVerity(data, { salt: Buffer.alloc(0), uuid: UUID });
      assert.match(out, new RegExp(`^Root hash:\\s+${ours.rootHash}$`, 'm'));
      assert.ok(ours.hashArea.equals(readFileSync(file).subarray(data.length)));
    });
  });

  describe('appendVerity', () => {
    it('writes a file that veritysetup verify accepts, and rejects after a data byte flips', () => {
      const tool = veritysetup();
      const file = join(dir, 'img');
      writeFileSync(file, sampleData(300));
      const r = appendVerity(file, { salt: SALT, uuid: UUID });
      assert.equal(r.dataBlocks, 300);
      assert.equal(r.hashOffset, 300 * VERITY_BLOCK);
      assert.equal(statSync(file).size, r.hashOffset + r.hashArea.length);
      const verify = () =>
        spawnSync(tool, ['verify', `--hash-offset=${r.hashOffset}`, file, file, r.rootHash], { encoding: 'utf8' });
      const good = verify();
      assert.equal(good.status, 0, `veritysetup verify failed: ${good.stderr}`);
      flipByte(file, 123 * VERITY_BLOCK + 17);
      const bad = verify();
      assert.notEqual(bad.status, 0, 'veritysetup verify accepted corrupted data');
    });

    it('pads an unaligned file with zeros to a whole block first', () => {
      const file = join(dir, 'img');
      const data = sampleData(2).subarray(0, 5000);
      writeFileSync(file, data);
      const r = appendVerity(file, { salt: SALT, uuid: UUID });
      assert.equal(r.dataBlocks, 2);
      assert.equal(r.hashOffset, 8192);
      const bytes = readFileSync(file);
      assert.equal(bytes.length, 8192 + r.hashArea.length);
      assert.ok(bytes.subarray(0, 5000).equals(data), 'data kept');
      assert.ok(bytes.subarray(5000, 8192).equals(Buffer.alloc(3192)), 'zero padding');
      assert.ok(bytes.subarray(8192).equals(r.hashArea));
      assert.deepEqual(verifyVerity(file, r.hashOffset, r.rootHash), { ok: true });
      const st = spawnSync(veritysetup(), ['verify', `--hash-offset=${r.hashOffset}`, file, file, r.rootHash], {
        encoding: 'utf8',
      });
      assert.equal(st.status, 0, st.stderr);
    });

    it('gives the same result as buildVerity on the same data', () => {
      const file = join(dir, 'img');
      const data = sampleData(200);
      writeFileSync(file, data);
      const a = appendVerity(file, { salt: SALT, uuid: UUID });
      const b = buildVerity(data, { salt: SALT, uuid: UUID });
      assert.equal(a.rootHash, b.rootHash);
      assert.ok(a.hashArea.equals(b.hashArea));
    });

    it('refuses a missing file with a clear message', () => {
      assert.throws(() => appendVerity(join(dir, 'absent'), { salt: SALT, uuid: UUID }), {
        name: 'KeelError',
        message: /^cannot append verity hash tree to .*absent: /,
      });
    });
  });

  describe('verifyVerity', () => {
    // 300 blocks: two tree levels (level 0 = 3 blocks), so a hash-area fault can be located.
    function image(blocks = 300) {
      const file = join(dir, 'img');
      writeFileSync(file, sampleData(blocks));
      return { file, ...appendVerity(file, { salt: SALT, uuid: UUID }) };
    }

    it('accepts a good file', () => {
      const { file, hashOffset, rootHash } = image();
      assert.deepEqual(verifyVerity(file, hashOffset, rootHash), { ok: true });
    });

    it('names the first bad data block after a data byte flips', () => {
      const { file, hashOffset, rootHash } = image();
      flipByte(file, 250 * VERITY_BLOCK + 4095);
      flipByte(file, 251 * VERITY_BLOCK);
      const r = verifyVerity(file, hashOffset, rootHash);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', /\bdata block 250\b/);
    });

    it('rejects a flipped byte in the tree, naming the hash area', () => {
      const { file, hashOffset, rootHash, hashArea } = image();
      flipByte(file, hashOffset + hashArea.length - 10); // level 0, its padding
      const r = verifyVerity(file, hashOffset, rootHash);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', /hash area/);
      assert.doesNotMatch(!r.ok ? r.reason : '', /data block/);
    });

    it('rejects a flipped digest byte in level 0 without blaming the data', () => {
      const { file, hashOffset, rootHash } = image();
      flipByte(file, hashOffset + 2 * VERITY_BLOCK + 5 * 32); // level 0 starts after sb + 1 top block
      const r = verifyVerity(file, hashOffset, rootHash);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', /hash area: level 0 block 0/);
    });

    it('rejects a corrupt superblock', () => {
      const { file, hashOffset, rootHash } = image();
      flipByte(file, hashOffset);
      const r = verifyVerity(file, hashOffset, rootHash);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', /superblock/);
    });

    it('rejects the wrong root hash', () => {
      const { file, hashOffset, rootHash } = image();
      const wrong = (rootHash[0] === '0' ? '1' : '0') + rootHash.slice(1);
      const r = verifyVerity(file, hashOffset, wrong);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', /root hash/);
    });

    it('handles a single data block (no tree) and a wrong root for it', () => {
      const { file, hashOffset, rootHash, hashArea } = image(1);
      assert.equal(hashArea.length, VERITY_BLOCK, 'superblock only');
      assert.deepEqual(verifyVerity(file, hashOffset, rootHash), { ok: true });
      assert.equal(verifyVerity(file, hashOffset, 'f'.repeat(64)).ok, false);
    });

    it('reports a missing hash area and refuses bad arguments', () => {
      const file = join(dir, 'img');
      writeFileSync(file, sampleData(4));
      const r = verifyVerity(file, 4 * VERITY_BLOCK, 'a'.repeat(64));
      assert.equal(r.ok, false);
      assert.throws(() => verifyVerity(file, 100, 'a'.repeat(64)), {
        name: 'KeelError',
        message: /^cannot verify .*: hash offset 100/,
      });
      assert.throws(() => verifyVerity(file, 4096, 'xyz'), {
        name: 'KeelError',
        message: /^cannot verify .*: root hash/,
      });
    });
  });

  describe('parseVeritySuperblock', () => {
    it('round-trips what buildVerity wrote', () => {
      const r = buildVerity(sampleData(129), { salt: SALT, uuid: UUID });
      assert.deepEqual(parseVeritySuperblock(r.hashArea.subarray(0, VERITY_BLOCK)), {
        dataBlocks: 129,
        salt: SALT,
        uuid: UUID,
        dataBlockSize: 4096,
        hashBlockSize: 4096,
        algorithm: 'sha256',
      });
      assert.equal(parseVeritySuperblock(r.hashArea.subarray(0, 512)).dataBlocks, 129, '512 bytes are enough');
    });

    it('reads a superblock written by veritysetup', () => {
      const file = join(dir, 'img');
      writeFileSync(file, sampleData(3));
      execFileSync(veritysetup(), [
        'format',
        '--hash-offset=12288',
        `--salt=${SALT.toString('hex')}`,
        `--uuid=${UUID}`,
        file,
        file,
      ]);
      const sb = parseVeritySuperblock(readFileSync(file).subarray(12288));
      assert.equal(sb.dataBlocks, 3);
      assert.equal(sb.uuid, UUID);
      assert.ok(sb.salt.equals(SALT));
    });

    it('rejects garbage with a clear message', () => {
      const good = buildVerity(sampleData(2), { salt: SALT, uuid: UUID }).hashArea.subarray(0, VERITY_BLOCK);
      const bad = (patch: (b: Buffer) => void) => {
        const b = Buffer.from(good);
        patch(b);
        return b;
      };
      const cases: [Buffer, RegExp][] = [
        [Buffer.alloc(4096, 0x5a), /signature/],
        [Buffer.alloc(100), /need 512 bytes/],
        [bad((b) => b.writeUInt32LE(2, 8)), /version 2/],
        [bad((b) => b.writeUInt32LE(0, 12)), /hash type 0/],
        [bad((b) => b.write('sha1\0\0', 32, 'latin1')), /algorithm "sha1"/],
        [bad((b) => b.writeUInt32LE(512, 64)), /block sizes 512\/4096/],
        [bad((b) => b.writeBigUInt64LE(0n, 72)), /data block count 0/],
        [bad((b) => b.writeUInt16LE(300, 80)), /salt size 300/],
      ];
      for (const [buf, re] of cases) {
        assert.throws(
          () => parseVeritySuperblock(buf),
          (e: Error) => {
            assert.equal(e.name, 'KeelError');
            assert.match(e.message, /^cannot parse verity superblock: /);
            assert.match(e.message, re);
            return true;
          },
        );
      }
    });
  });

  describe('verityTable', () => {
    it('lays out the dm-verity table fields', () => {
      const r = buildVerity(sampleData(300), { salt: SALT, uuid: UUID });
      const f = verityTable('/dev/vda3', r).split(' ');
      assert.deepEqual(f, [
        '0',
        '2400',
        'verity',
        '1',
        '/dev/vda3',
        '/dev/vda3',
        '4096',
        '4096',
        '300',
        '301',
        'sha256',
        r.rootHash,
        SALT.toString('hex'),
      ]);
    });

    it('writes "-" for an empty salt and refuses a bad root hash', () => {
      const p = { dataBlocks: 8, salt: Buffer.alloc(0), uuid: UUID, hashOffset: 8 * 4096, rootHash: 'b'.repeat(64) };
      assert.equal(verityTable('/dev/sda2', p).split(' ').at(-1), '-');
      assert.throws(() => verityTable('/dev/sda2', { ...p, rootHash: 'nope' }), {
        name: 'KeelError',
        message: /^cannot make verity table: /,
      });
    });
  });

  describe('input checks', () => {
    it('buildVerity throws on unaligned or empty data', () => {
      assert.throws(() => buildVerity(Buffer.alloc(5000), { salt: SALT, uuid: UUID }), {
        name: 'KeelError',
        message: /^cannot build verity hash tree: data size 5000 is not a positive multiple of 4096$/,
      });
      assert.throws(() => buildVerity(Buffer.alloc(0), { salt: SALT, uuid: UUID }), { name: 'KeelError' });
    });

    it('buildVerity throws on a bad uuid or an oversized salt', () => {
      assert.throws(() => buildVerity(Buffer.alloc(4096), { salt: SALT, uuid: 'ABC' }), {
        name: 'KeelError',
        message: /uuid must be/,
      });
      assert.throws(() => buildVerity(Buffer.alloc(4096), { salt: Buffer.alloc(257), uuid: UUID }), {
        name: 'KeelError',
        message: /salt must be/,
      });
    });
  });

  describe('deterministic salt and uuid', () => {
    it('same seed gives the same values, different seeds differ', () => {
      assert.ok(veritySaltFor('usr-1.2.3').equals(veritySaltFor('usr-1.2.3')));
      assert.equal(veritySaltFor('usr-1.2.3').length, 32);
      assert.ok(!veritySaltFor('usr-1.2.3').equals(veritySaltFor('usr-1.2.4')));
      assert.equal(verityUuidFor('usr-1.2.3'), verityUuidFor('usr-1.2.3'));
      assert.notEqual(verityUuidFor('usr-1.2.3'), verityUuidFor('usr-1.2.4'));
      assert.match(verityUuidFor('usr-1.2.3'), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.notEqual(
        verityUuidFor('x').replace(/-/g, ''),
        veritySaltFor('x').subarray(0, 16).toString('hex'),
        'salt and uuid independent',
      );
    });
  });
});
