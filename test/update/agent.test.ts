// The update agent on a fake machine: an ESP directory with both grubenv copies, two USR
// "partitions" as files, and an update server (keel serve) on loopback holding signed payloads.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGrubenv } from '../../slots/grubenv.js';
import { generateKeys, manifestFor, signManifest } from '../../builder/payload.js';
import { serveDirectory } from '../../builder/serve.js';
import { chooseSlot, slotVars, type Slot, type SlotState } from '../../slots/rule.js';
import { appendVerity } from '../../slots/verity.js';
import {
  applyUpdate,
  readStatus,
  rollback,
  stagedSlot,
  takeLock,
  type AgentEnv,
  type ApplyOptions,
} from '../../update/agent.js';
import { defaultUpdateConfig, type UpdateConfig } from '../../update/config.js';
import type { Checkpoint } from '../../update/download.js';
import { grubenvFiles, readSlotState } from '../../slots/store.js';
import { lockChild } from '../lib/lock-helpers.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const PART = 8 * MiB;
const DATA = 4 * MiB; // + the verity hash area: a short last chunk
const HA = 'a'.repeat(64);
const HB = 'b'.repeat(64);
/** A committed with 1.0.0 and booted; B holds an older good system. */
const INITIAL: SlotState = {
  order: ['A', 'B'],
  A: { ok: true, tries: 0, hash: HA, version: '1.0.0' },
  B: { ok: true, tries: 0, hash: HB, version: '0.9.0' },
};
/** What B holds before an update: not the image. */
const OLD_B = Buffer.alloc(64 * 1024, 0xbb);

const BOOT_ID = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Machine {
  env: AgentEnv;
  logs: string[];
  stateDir: string;
  part: Record<Slot, string>;
  /** Both grubenv copies, as bytes. */
  copies(): Buffer[];
  state(): SlotState;
}

describe('update/agent', function () {
  this.timeout(10_000);
  let dir: string;
  let server: Server;
  let base: string;
  let publicKey: string;
  let image: Buffer;
  let rootHash: string;
  let hashOffset: number;
  /** Image requests (GET /GROUP/usr-*.img) the server answered. */
  let imageRequests = 0;
  let n = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-agent-'));
    const keys = generateKeys(join(dir, 'keys'));
    const otherKeys = generateKeys(join(dir, 'other-keys'));
    publicKey = readFileSync(keys.publicKey, 'utf8');
    const priv = readFileSync(keys.privateKey, 'utf8');
    const otherPriv = readFileSync(otherKeys.privateKey, 'utf8');
    const file = join(dir, 'usr.img');
    writeFileSync(file, randomBytes(DATA));
    const salt = randomBytes(32);
    const v = appendVerity(file, { salt, uuid: '12345678-1234-4234-8234-123456789abc' });
    image = readFileSync(file);
    rootHash = v.rootHash;
    hashOffset = v.hashOffset;
    assert.equal(hashOffset, DATA);
    const verity = { rootHash, hashOffset, salt: salt.toString('hex') };

    // One group per payload variant, all served from one directory.
    const payload = (
      group: string,
      version: string,
      o: { key?: string; tamperManifest?: boolean; badChunk?: number; badTree?: boolean } = {},
    ) => {
      const gdir = join(dir, 'www', group);
      mkdirSync(gdir, { recursive: true });
      const data = Buffer.from(image);
      // A verity tree that does not match the root hash, in an image the manifest's chunk hashes describe.
      if (o.badTree) data[hashOffset + 3 * 4096 + 5] ^= 0xff;
      const name = `usr-${version}.img`;
      const { bytes, signature } = signManifest(manifestFor(data, version, name, CHUNK, verity), o.key ?? priv);
      writeFileSync(
        join(gdir, 'manifest.json'),
        o.tamperManifest ? Buffer.from(bytes.toString().replace('"size": ', '"size": 1')) : bytes,
      );
      writeFileSync(join(gdir, 'manifest.json.sig'), signature + '\n');
      // A chunk changed after signing: what a corrupted mirror serves.
      if (o.badChunk !== undefined) data[o.badChunk * CHUNK + 100] ^= 0xff;
      writeFileSync(join(gdir, name), data);
    };
    payload('stable', '1.1.0');
    payload('badsig', '1.1.0', { key: otherPriv });
    payload('tampered', '1.1.0', { tamperManifest: true });
    payload('old', '0.5.0');
    payload('same', '1.0.0');
    payload('badchunk', '1.1.0', { badChunk: 5 });
    payload('badtree', '1.1.0', { badTree: true });
    server = await serveDirectory(join(dir, 'www'), 0, '127.0.0.1');
    server.on('request', (req) => {
      if (/\.img$/.test(req.url ?? '')) imageRequests++;
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const cfg = (group = 'stable', over: Partial<UpdateConfig> = {}): UpdateConfig => ({
    ...defaultUpdateConfig(),
    server: base,
    group,
    ...over,
  });

  function machine(state: SlotState = INITIAL, cmdline = 'console=ttyS0 keel.slot=A keel.verity=' + HA): Machine {
    const m = join(dir, `m${n++}`);
    const esp = join(m, 'esp');
    mkdirSync(join(esp, 'keel'), { recursive: true });
    for (const f of grubenvFiles(esp)) writeFileSync(f, encodeGrubenv(slotVars(state)));
    const part = { A: join(m, 'usr-a'), B: join(m, 'usr-b') };
    for (const p of Object.values(part)) {
      writeFileSync(p, OLD_B);
      truncateSync(p, PART);
    }
    const logs: string[] = [];
    const env: AgentEnv = {
      esp,
      cmdline,
      stateDir: join(m, 'state'),
      publicKey,
      osVersion: '1.0.0',
      log: (s) => logs.push(s),
      partition: (slot) => ({ path: part[slot], size: statSync(part[slot]).size }),
    };
    return {
      env,
      logs,
      stateDir: env.stateDir,
      part,
      copies: () => grubenvFiles(esp).map((f) => readFileSync(f)),
      state: () => readSlotState(esp).state,
    };
  }

  /** Asserts the B partition holds the image at its start and, after it, what it held before. */
  function holdsImage(m: Machine) {
    const b = readFileSync(m.part.B);
    assert.equal(b.length, PART);
    assert.ok(b.subarray(0, image.length).equals(image), 'B starts with exactly the image');
    assert.ok(b.subarray(image.length).equals(Buffer.alloc(PART - image.length)), 'B after the image is untouched');
  }

  it(
    'apply: writes the image into B, makes B the next boot on trial ' +
      '(TRIES=3), A untouched; status staged; no checkpoint',
    async () => {
      const m = machine();
      const progress: number[] = [];
      const r = await applyUpdate(cfg(), m.env, { progress: (p) => progress.push(p.doneBytes) });
      assert.equal(r.status, 'staged');
      assert.ok(r.status === 'staged');
      assert.equal(r.version, '1.1.0');
      assert.equal(r.slot, 'B');
      assert.equal(r.resumedChunks, 0);
      holdsImage(m);
      assert.equal(sha(readFileSync(m.part.A).subarray(0, OLD_B.length)), sha(OLD_B), 'A untouched');
      const state = m.state();
      assert.deepEqual(state, {
        order: ['B', 'A'],
        A: INITIAL.A,
        B: { ok: false, tries: 3, hash: rootHash, version: '1.1.0' },
      });
      const [a, b] = m.copies();
      assert.ok(a.equals(b), 'both copies hold the state');
      const boot = chooseSlot(state);
      assert.equal(boot.slot, 'B');
      assert.equal(boot.trial, true);
      assert.equal(boot.next.B.tries, 2);
      assert.equal(stagedSlot(state, 'A'), 'B');
      const status = readStatus(m.stateDir)!;
      assert.equal(status.phase, 'staged');
      assert.equal(status.version, '1.1.0');
      assert.equal(status.slot, 'B');
      assert.ok(status.lastCheck, 'the check is recorded');
      assert.equal(existsSync(join(m.stateDir, 'checkpoint.json')), false);
      assert.equal(existsSync(join(m.stateDir, 'lock')), false, 'the lock is released');
      assert.equal(progress.at(-1), image.length);
      assert.ok(
        m.logs.some((l) => /slot B marked not bootable: writing update 1\.1\.0/.test(l)),
        m.logs.join('\n'),
      );
      assert.ok(
        m.logs.some((l) => /update 1\.1\.0 staged in slot B/.test(l)),
        m.logs.join('\n'),
      );

      // Again: already staged, nothing downloaded, nothing written.
      const before = imageRequests;
      const copies = m.copies();
      assert.deepEqual(await applyUpdate(cfg(), m.env), { status: 'already-staged', version: '1.1.0', slot: 'B' });
      assert.equal(imageRequests, before, 'no image request');
      assert.deepEqual(m.copies(), copies);
      assert.equal(readStatus(m.stateDir)!.phase, 'staged');
    },
  );

  describe('refusals leave the slot state byte for byte and slot B untouched', () => {
    async function refused(m: Machine, c: UpdateConfig, code: string, message?: RegExp, o: ApplyOptions = {}) {
      const copies = m.copies();
      const b = sha(readFileSync(m.part.B));
      const requests = imageRequests;
      await assert.rejects(applyUpdate(c, m.env, o), (e: Error & { code?: string }) => {
        assert.equal(e.code, code, e.message);
        if (message) assert.match(e.message, message);
        return true;
      });
      assert.deepEqual(m.copies(), copies, 'grubenv copies unchanged');
      assert.equal(sha(readFileSync(m.part.B)), b, 'slot B unchanged');
      assert.equal(imageRequests, requests, 'no image downloaded');
      const status = readStatus(m.stateDir)!;
      assert.equal(status.phase, 'error');
      assert.equal(existsSync(join(m.stateDir, 'lock')), false);
      return status;
    }

    it('a manifest signed with another key (ESIGNATURE)', async () => {
      const status = await refused(machine(), cfg('badsig'), 'ESIGNATURE', /signature does not verify/);
      assert.match(status.error!, /signature/);
    });

    it('a manifest changed after signing (ESIGNATURE)', async () => {
      await refused(machine(), cfg('tampered'), 'ESIGNATURE');
    });

    it('an older version (EDOWNGRADE, naming both); with force it is applied', async () => {
      const m = machine();
      await refused(m, cfg('old'), 'EDOWNGRADE', /update 0\.5\.0: it is older than the running 1\.0\.0/);
      const r = await applyUpdate(cfg('old'), m.env, { force: true });
      assert.equal(r.status, 'staged');
      assert.deepEqual(m.state().B, { ok: false, tries: 3, hash: rootHash, version: '0.5.0' });
      assert.deepEqual(m.state().order, ['B', 'A']);
      holdsImage(m);
    });

    it('the same version: up-to-date, status idle, nothing written', async () => {
      const m = machine();
      const copies = m.copies();
      assert.deepEqual(await applyUpdate(cfg('same'), m.env), { status: 'up-to-date', current: '1.0.0' });
      assert.deepEqual(m.copies(), copies);
      assert.equal(readStatus(m.stateDir)!.phase, 'idle');
      assert.ok(readStatus(m.stateDir)!.lastCheck);
    });

    it('an image larger than slot B (ETOOBIG)', async () => {
      const m = machine();
      truncateSync(m.part.B, 1 * MiB);
      await refused(m, cfg(), 'ETOOBIG', new RegExp(`the image is ${image.length} bytes, slot B holds ${MiB}`));
    });

    it('no update server configured (ENOSERVER)', async () => {
      await refused(machine(), cfg('stable', { server: null }), 'ENOSERVER', /no update server is configured/);
    });

    it('this boot is still on trial (ETRIAL)', async () => {
      const trial: SlotState = { ...INITIAL, A: { ...INITIAL.A, ok: false, tries: 2 } };
      await refused(machine(trial), cfg(), 'ETRIAL', /this boot \(slot A\) is not committed/);
    });

    it('a boot that did not come from a slot (ENOSLOT)', async () => {
      await refused(machine(INITIAL, 'console=ttyS0'), cfg(), 'ENOSLOT');
    });
  });

  it('a chunk that does not match the signed manifest: fails naming it; B not bootable, A still first', async () => {
    const m = machine();
    await assert.rejects(applyUpdate(cfg('badchunk'), m.env), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ECHUNKFATAL');
      assert.match(e.message, /cannot accept chunk 5 of /);
      return true;
    });
    const state = m.state();
    assert.deepEqual(state, { order: ['A', 'B'], A: INITIAL.A, B: { ok: false, tries: 0 } });
    assert.equal(chooseSlot(state).slot, 'A');
    assert.equal(chooseSlot(state).trial, false);
    assert.equal(stagedSlot(state, 'A'), null);
    const b = readFileSync(m.part.B);
    assert.ok(b.subarray(0, 5 * CHUNK).equals(image.subarray(0, 5 * CHUNK)), 'the chunks before it were written');
    assert.ok(
      !b.subarray(5 * CHUNK, 6 * CHUNK).equals(image.subarray(5 * CHUNK, 6 * CHUNK)),
      'the bad chunk was never written',
    );
    assert.equal(readStatus(m.stateDir)!.phase, 'error');
    assert.match(readStatus(m.stateDir)!.error!, /chunk 5/);
  });

  it('an interrupted apply resumes from the checkpoint and stages', async () => {
    const m = machine();
    const ac = new AbortController();
    await assert.rejects(
      applyUpdate(cfg(), m.env, {
        signal: ac.signal,
        progress: (p) => {
          if (p.doneBytes > 0) ac.abort();
        },
      }),
      (e: Error & { code?: string }) => e.code === 'EABORT',
    );
    const state = m.state();
    assert.deepEqual(
      state,
      { order: ['A', 'B'], A: INITIAL.A, B: { ok: false, tries: 0 } },
      'nothing points at the half-written slot',
    );
    const cp: Checkpoint = JSON.parse(readFileSync(join(m.stateDir, 'checkpoint.json'), 'utf8'));
    assert.ok(cp.done.length > 0 && cp.done.length < image.length / CHUNK, `checkpoint holds ${cp.done.length} chunks`);
    const r = await applyUpdate(cfg(), m.env);
    assert.equal(r.status, 'staged');
    assert.ok(r.status === 'staged' && r.resumedChunks > 0 && r.resumedChunks === cp.done.length, JSON.stringify(r));
    assert.ok(m.logs.some((l) => /resumed update 1\.1\.0/.test(l)));
    holdsImage(m);
    assert.deepEqual(m.state().B, { ok: false, tries: 3, hash: rootHash, version: '1.1.0' });
    assert.equal(existsSync(join(m.stateDir, 'checkpoint.json')), false);
  });

  it('a verity tree that does not match the root hash: EVERIFY after download, B not flipped', async () => {
    const m = machine();
    await assert.rejects(applyUpdate(cfg('badtree'), m.env), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'EVERIFY');
      assert.match(e.message, /cannot apply update 1\.1\.0: slot B does not read back as written: /);
      return true;
    });
    assert.deepEqual(m.state(), { order: ['A', 'B'], A: INITIAL.A, B: { ok: false, tries: 0 } });
    assert.equal(existsSync(join(m.stateDir, 'checkpoint.json')), false, 'a wrong image is not resumed');
    assert.equal(readStatus(m.stateDir)!.phase, 'error');
  });

  describe('takeLock', () => {
    /** A fresh machine with its state directory made, and the path of its lock file. */
    const lockedMachine = () => {
      const m = machine();
      mkdirSync(m.stateDir, { recursive: true });
      return { m, lock: join(m.stateDir, 'lock') };
    };

    it('refuses while a live process holds it; a holder killed with SIGKILL leaves it free at once', async () => {
      const { m, lock } = lockedMachine();
      const holder = lockChild('hold', lock);
      try {
        assert.equal(await holder.line(), 'locked');
        assert.throws(
          () => takeLock(m.stateDir),
          (e: Error & { code?: string }) => e.code === 'EBUSY' && e.message.includes(`pid ${holder.pid}`),
        );
        // An apply meanwhile is refused without touching the running one's status.
        writeFileSync(join(m.stateDir, 'status.json'), JSON.stringify({ phase: 'downloading', at: 'x' }));
        await assert.rejects(applyUpdate(cfg(), m.env), (e: Error & { code?: string }) => e.code === 'EBUSY');
        assert.equal(readStatus(m.stateDir)!.phase, 'downloading');
        assert.equal(readFileSync(lock, 'utf8'), `${holder.pid}\n`);
      } finally {
        holder.child.kill('SIGKILL');
        await holder.exited;
      }
      assert.equal(existsSync(lock), true, 'the killed holder left its file');
      const release = takeLock(m.stateDir);
      assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`);
      release();
      assert.equal(existsSync(lock), false);
    });

    it(
      'a lock file left by a power cut naming a live pid (of this ' + 'boot or another) does not hold the lock',
      async () => {
        const { m, lock } = lockedMachine();
        const other = spawn('sleep', ['30'], { stdio: 'ignore' });
        const exited = new Promise((r) => other.once('exit', r));
        try {
          for (const text of [`${other.pid} ${BOOT_ID}\n`, `${other.pid} 00000000-0000-4000-8000-000000000000\n`]) {
            writeFileSync(lock, text);
            const release = takeLock(m.stateDir);
            assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`);
            release();
          }
        } finally {
          other.kill('SIGKILL');
          await exited;
        }
      },
    );

    it('takes over an empty or garbled lock file, and then really holds it', () => {
      const { m, lock } = lockedMachine();
      for (const junk of ['', 'garbage', '12 not-a-boot-id']) {
        writeFileSync(lock, junk);
        const release = takeLock(m.stateDir);
        assert.equal(
          readFileSync(lock, 'utf8'),
          `${process.pid}\n`,
          `the lock read back after ${JSON.stringify(junk)}`,
        );
        assert.throws(
          () => takeLock(m.stateDir),
          (e: Error & { code?: string }) => e.code === 'EBUSY' && e.message.includes(`pid ${process.pid}`),
        );
        release();
        assert.equal(existsSync(lock), false);
      }
    });
  });

  describe('rollback', () => {
    it('refuses when the other slot holds no good system; the state is unchanged', () => {
      for (const B of [
        { ok: false, tries: 0 },
        { ok: false, tries: 3, hash: HB },
        { ok: true, tries: 0 },
      ]) {
        const m = machine({ ...INITIAL, B });
        const copies = m.copies();
        assert.throws(
          () => rollback(m.env),
          (e: Error & { code?: string }) =>
            e.code === 'ENOROLLBACK' && /slot B holds no system known to be good/.test(e.message),
        );
        assert.deepEqual(m.copies(), copies);
      }
    });

    it('makes a good other slot the next boot', () => {
      const m = machine();
      assert.deepEqual(rollback(m.env), { to: 'B', version: '0.9.0' });
      assert.deepEqual(m.state(), { ...INITIAL, order: ['B', 'A'] });
      assert.equal(chooseSlot(m.state()).slot, 'B');
      assert.ok(m.copies()[0].equals(m.copies()[1]));
    });

    it('from a trial boot of an update, back to the committed slot', () => {
      const s: SlotState = { order: ['B', 'A'], A: INITIAL.A, B: { ok: false, tries: 2, hash: HB, version: '1.1.0' } };
      const m = machine(s, 'keel.slot=B');
      assert.deepEqual(rollback(m.env), { to: 'A', version: '1.0.0' });
      assert.deepEqual(m.state().order, ['A', 'B']);
      assert.equal(chooseSlot(m.state()).slot, 'A');
    });
  });
});
