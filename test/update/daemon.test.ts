// The agent loop's reboot decision (strategies, window, the etcd lock against a real etcd started
// by etcd-helpers.ts) and one whole round on a fake machine with an update server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGrubenv } from '../../slots/grubenv.js';
import { generateKeys, manifestFor, signManifest } from '../../builder/payload.js';
import { serveDirectory } from '../../builder/serve.js';
import { slotVars, type SlotState } from '../../slots/rule.js';
import { appendVerity } from '../../slots/verity.js';
import type { AgentEnv } from '../../update/agent.js';
import { defaultUpdateConfig, type UpdateConfig } from '../../update/config.js';
import { agentRound, mayReboot, type DaemonDeps } from '../../update/daemon.js';
import { RebootLock } from '../../update/etcd-lock.js';
import { msUntilWindow, parseWindow } from '../../update/reboot-window.js';
import { grubenvFiles, readSlotState } from '../../slots/store.js';
import { freePort, startEtcd, type EtcdProcess } from './etcd-helpers.js';

const HA = 'a'.repeat(64);
const INITIAL: SlotState = {
  order: ['A', 'B'],
  A: { ok: true, tries: 0, hash: HA, version: '1.0.0' },
  B: { ok: false, tries: 0 },
};

describe('update/daemon', function () {
  this.timeout(15_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-daemon-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cfgWith = (over: Partial<UpdateConfig>): UpdateConfig => ({ ...defaultUpdateConfig(), ...over });
  /** A lock factory that fails the test if called. */
  const noLock = () => {
    throw new Error('the etcd lock was asked for');
  };
  // Local time, as the window is (a Wednesday noon).
  const NOON = new Date(2024, 0, 10, 12, 0, 0);

  describe('mayReboot', () => {
    it('off: never, and waits forever', async () => {
      const r = await mayReboot(cfgWith({ strategy: 'off' }), NOON, noLock);
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.waitMs === Infinity && /REBOOT_STRATEGY=off/.test(r.why));
      assert.equal(
        (await mayReboot(cfgWith({ strategy: 'off', window: { start: '11:00', length: '2h' } }), NOON, noLock)).ok,
        false,
      );
    });

    it('reboot without a window: at once', async () => {
      assert.deepEqual(await mayReboot(cfgWith({ strategy: 'reboot' }), NOON, noLock), { ok: true });
    });

    it('reboot with a window: at once inside it; outside, waits until it opens', async () => {
      assert.deepEqual(await mayReboot(cfgWith({ window: { start: '11:30', length: '1h' } }), NOON, noLock), {
        ok: true,
      });
      const window = { start: 'Thu 03:00', length: '1h30m' };
      const r = await mayReboot(cfgWith({ window }), NOON, noLock);
      assert.equal(r.ok, false);
      const expected = msUntilWindow(parseWindow(window.start, window.length), NOON);
      assert.ok(!r.ok && r.waitMs === expected, JSON.stringify(r));
      assert.equal(expected, 15 * 3600_000);
      assert.ok(
        !r.ok && /waiting for the reboot window Thu 03:00 \(\+1h30m\), opening in 900 min/.test(r.why),
        JSON.stringify(r),
      );
    });

    it('an etcd strategy outside the window does not touch etcd', async () => {
      const r = await mayReboot(
        cfgWith({ strategy: 'etcd-lock', window: { start: '03:00', length: '1h' } }),
        NOON,
        noLock,
      );
      assert.equal(r.ok, false);
    });

    it('best-effort with etcd unreachable: at once; etcd-lock: waits, naming the error', async () => {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const lock = () => new RebootLock({ endpoints: [dead], group: null, id: 'm1', timeoutMs: 2000 });
      assert.deepEqual(await mayReboot(cfgWith({ strategy: 'best-effort' }), NOON, lock), { ok: true });
      const r = await mayReboot(cfgWith({ strategy: 'etcd-lock' }), NOON, lock);
      assert.ok(
        !r.ok && r.waitMs === 60_000 && /cannot take the etcd reboot lock: etcd unreachable/.test(r.why),
        JSON.stringify(r),
      );
    });

    describe('against a real etcd', function () {
      let etcd: EtcdProcess | undefined;
      let url: string;
      before(async () => {
        etcd = await startEtcd('keel-daemon-test', join(dir, 'etcd'));
        url = etcd.url;
      });
      after(() => etcd?.stop());

      for (const strategy of ['etcd-lock', 'best-effort'] as const) {
        it(`${strategy}: the first machine may reboot, a second waits for the lock`, async () => {
          const c = cfgWith({ strategy, etcd: { endpoints: [url], group: strategy } });
          const lockFor = (id: string) => () =>
            new RebootLock({ endpoints: c.etcd.endpoints, group: c.etcd.group, id });
          assert.deepEqual(await mayReboot(c, NOON, lockFor('machine-1')), { ok: true });
          assert.deepEqual(await mayReboot(c, NOON, lockFor('machine-1')), { ok: true }, 'a holder asking again');
          const r = await mayReboot(c, NOON, lockFor('machine-2'));
          assert.ok(!r.ok && r.waitMs === 60_000 && /held by other machines/.test(r.why), JSON.stringify(r));
          await lockFor('machine-1')().unlock();
          assert.deepEqual(await mayReboot(c, NOON, lockFor('machine-2')), { ok: true });
        });
      }
    });
  });

  describe('agentRound', () => {
    let server: Server;
    let base: string;
    let publicKey: string;
    let n = 0;
    before(async () => {
      const keys = generateKeys(join(dir, 'keys'));
      publicKey = readFileSync(keys.publicKey, 'utf8');
      const file = join(dir, 'usr.img');
      writeFileSync(file, randomBytes(1 << 20));
      const salt = randomBytes(32);
      const v = appendVerity(file, { salt, uuid: '12345678-1234-4234-8234-123456789abc' });
      const data = readFileSync(file);
      const { bytes, signature } = signManifest(
        manifestFor(data, '1.1.0', 'usr-1.1.0.img', 256 * 1024, {
          rootHash: v.rootHash,
          hashOffset: v.hashOffset,
          salt: salt.toString('hex'),
        }),
        readFileSync(keys.privateKey, 'utf8'),
      );
      mkdirSync(join(dir, 'www/stable'), { recursive: true });
      writeFileSync(join(dir, 'www/stable/manifest.json'), bytes);
      writeFileSync(join(dir, 'www/stable/manifest.json.sig'), signature);
      writeFileSync(join(dir, 'www/stable/usr-1.1.0.img'), data);
      server = await serveDirectory(join(dir, 'www'), 0);
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    });

    function machine(): { env: AgentEnv; logs: string[] } {
      const m = join(dir, `m${n++}`);
      const esp = join(m, 'esp');
      mkdirSync(join(esp, 'keel'), { recursive: true });
      for (const f of grubenvFiles(esp)) writeFileSync(f, encodeGrubenv(slotVars(INITIAL)));
      const part = { A: join(m, 'usr-a'), B: join(m, 'usr-b') };
      for (const p of Object.values(part)) {
        writeFileSync(p, '');
        truncateSync(p, 4 << 20);
      }
      const logs: string[] = [];
      return {
        logs,
        env: {
          esp,
          cmdline: 'keel.slot=A',
          stateDir: join(m, 'state'),
          publicKey,
          osVersion: '1.0.0',
          log: (s) => logs.push(s),
          partition: (slot) => ({ path: part[slot], size: statSync(part[slot]).size }),
        },
      };
    }
    const deps = (c: UpdateConfig, reboots: { n: number }): DaemonDeps => ({
      loadConfig: () => c,
      machineId: 'machine-1',
      now: () => NOON,
      reboot: async () => {
        reboots.n++;
      },
    });

    it('strategy reboot: applies the update and reboots into it', async () => {
      const { env, logs } = machine();
      const reboots = { n: 0 };
      const c = cfgWith({ server: base, strategy: 'reboot' });
      const r = await agentRound(env, deps(c, reboots));
      assert.equal(reboots.n, 1);
      assert.deepEqual(r, { nextMs: 3600_000 });
      assert.deepEqual(readSlotState(env.esp).state.order, ['B', 'A']);
      assert.ok(
        logs.some((l) => /update 1\.1\.0 written to slot B/.test(l)),
        logs.join('\n'),
      );
      assert.ok(
        logs.some((l) => /rebooting into slot B \(REBOOT_STRATEGY=reboot\)/.test(l)),
        logs.join('\n'),
      );
    });

    it('strategy off: applies the update, does not reboot, says it is staged', async () => {
      const { env, logs } = machine();
      const reboots = { n: 0 };
      const c = cfgWith({ server: base, strategy: 'off', checkIntervalSeconds: 600 });
      assert.deepEqual(await agentRound(env, deps(c, reboots)), { nextMs: 600_000 });
      assert.equal(reboots.n, 0);
      assert.equal(readSlotState(env.esp).state.B.tries, 3);
      assert.ok(
        logs.some((l) => /an update is staged in slot B; REBOOT_STRATEGY=off/.test(l)),
        logs.join('\n'),
      );
      // The next round: already staged, still no reboot.
      assert.deepEqual(await agentRound(env, deps(c, reboots)), { nextMs: 600_000 });
      assert.equal(reboots.n, 0);
    });

    it('window closed: staged, no reboot, the next round when the window opens', async () => {
      const { env } = machine();
      const reboots = { n: 0 };
      const c = cfgWith({ server: base, window: { start: '13:00', length: '1h' } });
      assert.deepEqual(await agentRound(env, deps(c, reboots)), { nextMs: 3600_000 });
      assert.equal(reboots.n, 0);
      const c2 = cfgWith({ server: base, window: { start: '12:30', length: '1h' } });
      assert.deepEqual(await agentRound(env, deps(c2, reboots)), { nextMs: 1800_000 });
      assert.equal(reboots.n, 0);
    });

    it('nothing staged (no server): no reboot; a bad config waits 5 minutes', async () => {
      const { env, logs } = machine();
      const reboots = { n: 0 };
      assert.deepEqual(await agentRound(env, deps(cfgWith({}), reboots)), { nextMs: 3600_000 });
      assert.equal(reboots.n, 0);
      const r = await agentRound(env, {
        ...deps(cfgWith({}), reboots),
        loadConfig: () => {
          throw new Error('update.conf:3: bad');
        },
      });
      assert.deepEqual(r, { nextMs: 300_000 });
      assert.ok(logs.some((l) => /update.conf:3: bad; not updating until it is fixed/.test(l)));
    });
  });
});
