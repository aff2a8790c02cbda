// The boot-complete gate on a fake ESP: the verdict at boot (rollback report, trial), and the gate
// committing a trial boot or marking it bad, with fake units and a fake clock.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGrubenv } from '../../slots/grubenv.js';
import { chooseSlot, slotVars, type SlotState } from '../../slots/rule.js';
import { bootVerdict, reportRollback, runBootGate, type GateOptions, type GateUnits } from '../../update/boot-gate.js';
import { grubenvFiles, readSlotState } from '../../slots/store.js';

const HA = 'a'.repeat(64);
const HB = 'b'.repeat(64);
/** A committed on 1.0.0, B staged with 1.1.0 and first. */
const STAGED: SlotState = {
  order: ['B', 'A'],
  A: { ok: true, tries: 0, hash: HA, version: '1.0.0' },
  B: { ok: false, tries: 3, hash: HB, version: '1.1.0' },
};

describe('update/boot-gate', () => {
  describe('bootVerdict', () => {
    it('booted the first slot, committed: no trial, nothing to change', () => {
      const s: SlotState = { order: ['A', 'B'], A: { ok: true, tries: 0, hash: HA }, B: { ok: false, tries: 0 } };
      assert.deepEqual(bootVerdict(s, 'A'), { trial: false, rollback: null, next: null });
    });

    it('booted the first slot on trial: trial, no rollback', () => {
      const s = { ...STAGED, B: { ...STAGED.B, tries: 2 } }; // GRUB used one try
      assert.deepEqual(bootVerdict(s, 'B'), { trial: true, rollback: null, next: null });
    });

    it(
      'booted another slot than the first, which is not OK: a rollback ' +
        'record, ORDER fixed, the failed slot out of tries',
      () => {
        const s = { ...STAGED, B: { ...STAGED.B, tries: 0 } }; // GRUB used all tries, then fell back to A
        const v = bootVerdict(s, 'A');
        assert.equal(v.trial, false);
        assert.ok(v.rollback);
        assert.ok(!Number.isNaN(Date.parse(v.rollback.at)));
        assert.deepEqual(
          { ...v.rollback, at: 'x' },
          { at: 'x', failed: 'B', failedVersion: '1.1.0', running: 'A', runningVersion: '1.0.0' },
        );
        assert.deepEqual(v.next, {
          order: ['A', 'B'],
          A: STAGED.A,
          B: { ok: false, tries: 0, hash: HB, version: '1.1.0' },
        });
        assert.equal(chooseSlot(v.next!).slot, 'A');
      },
    );

    it('no versions recorded: the record has none', () => {
      const s: SlotState = { order: ['B', 'A'], A: { ok: true, tries: 0 }, B: { ok: false, tries: 0 } };
      const v = bootVerdict(s, 'A');
      assert.deepEqual(Object.keys(v.rollback!).sort(), ['at', 'failed', 'running']);
    });

    it("booted another slot than a first that is OK (an operator's choice pending): no rollback", () => {
      const s: SlotState = { order: ['B', 'A'], A: { ok: true, tries: 0 }, B: { ok: true, tries: 0 } };
      assert.deepEqual(bootVerdict(s, 'A'), { trial: false, rollback: null, next: null });
    });
  });

  describe('on an ESP', () => {
    let dir: string, esp: string, stateDir: string;
    let logs: string[];
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'keel-gate-'));
      esp = join(dir, 'esp');
      stateDir = join(dir, 'state');
      mkdirSync(join(esp, 'keel'), { recursive: true });
      logs = [];
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const setState = (s: SlotState) => {
      for (const f of grubenvFiles(esp)) writeFileSync(f, encodeGrubenv(slotVars(s)));
    };
    const copies = () => grubenvFiles(esp).map((f) => readFileSync(f));

    describe('reportRollback', () => {
      it('writes rollback.json, logs it and puts the running slot first', () => {
        setState({ ...STAGED, B: { ...STAGED.B, tries: 0 } });
        const r = reportRollback({ esp, cmdline: 'console=ttyS0 keel.slot=A', stateDir, log: (m) => logs.push(m) });
        assert.deepEqual(r, { booted: 'A', trial: false });
        const rec = JSON.parse(readFileSync(join(stateDir, 'rollback.json'), 'utf8'));
        assert.deepEqual(
          { ...rec, at: 'x' },
          { at: 'x', failed: 'B', failedVersion: '1.1.0', running: 'A', runningVersion: '1.0.0' },
        );
        assert.deepEqual(logs, ['rollback: slot B (version 1.1.0) did not boot; running slot A (version 1.0.0)']);
        const { state } = readSlotState(esp);
        assert.deepEqual(state.order, ['A', 'B']);
        assert.deepEqual(state.B, { ok: false, tries: 0, hash: HB, version: '1.1.0' });
        const [a, b] = copies();
        assert.ok(a.equals(b), 'both copies written');
      });

      it('a trial boot of the first slot: trial, nothing written', () => {
        setState({ ...STAGED, B: { ...STAGED.B, tries: 2 } });
        const before = copies();
        assert.deepEqual(reportRollback({ esp, cmdline: 'keel.slot=B', stateDir, log: (m) => logs.push(m) }), {
          booted: 'B',
          trial: true,
        });
        assert.deepEqual(copies(), before);
        assert.equal(existsSync(join(stateDir, 'rollback.json')), false);
        assert.deepEqual(logs, []);
      });

      it('no keel.slot= on the command line: nothing to report or change', () => {
        setState({ ...STAGED, B: { ...STAGED.B, tries: 0 } });
        const before = copies();
        assert.deepEqual(reportRollback({ esp, cmdline: 'console=ttyS0', stateDir, log: (m) => logs.push(m) }), {
          booted: null,
          trial: false,
        });
        assert.deepEqual(copies(), before);
      });
    });

    describe('runBootGate', () => {
      /** Units whose failed list follows `failedAt(call)`; a sleep that only counts. */
      function fakes(o: { result?: string; failedAt?: (call: number) => string[] } = {}) {
        let calls = 0;
        const slept: number[] = [];
        const units: GateUnits = {
          startBootComplete: async () => o.result ?? 'done',
          failedHealthUnits: () => (o.failedAt ?? (() => []))(calls++),
        };
        let reboots = 0;
        const opts = (healthySeconds: number): GateOptions => ({
          esp,
          cmdline: 'console=ttyS0 keel.slot=B',
          stateDir,
          healthySeconds,
          units,
          log: (m) => logs.push(m),
          reboot: () => {
            reboots++;
          },
          sleep: async (ms) => {
            slept.push(ms);
          },
        });
        return { opts, slept, reboots: () => reboots, calls: () => calls };
      }
      const onTrial = () => setState({ ...STAGED, B: { ...STAGED.B, tries: 2 } });

      it(
        'healthy for healthySeconds: the slot is committed (OK=1, TRIES=0) ' +
          'and first; the wait is measured by the sleeps',
        async () => {
          onTrial();
          const f = fakes();
          assert.equal(await runBootGate(f.opts(60), 'B'), 'committed');
          assert.equal(
            f.slept.reduce((a, b) => a + b, 0),
            60_000,
          );
          assert.ok(
            f.slept.every((ms) => ms > 0 && ms <= 1000),
            String(f.slept),
          );
          assert.ok(f.calls() >= 60, 'the health units are checked during the wait');
          const { state } = readSlotState(esp);
          assert.deepEqual(state, {
            order: ['B', 'A'],
            A: STAGED.A,
            B: { ok: true, tries: 0, hash: HB, version: '1.1.0' },
          });
          assert.equal(chooseSlot(state).trial, false);
          assert.equal(f.reboots(), 0);
          assert.match(logs.join('\n'), /boot committed: slot B \(version 1\.1\.0\) is good after 60s healthy/);
        },
      );

      it('healthySeconds 0 commits at once, without sleeping', async () => {
        onTrial();
        const f = fakes();
        assert.equal(await runBootGate(f.opts(0), 'B'), 'committed');
        assert.deepEqual(f.slept, []);
        assert.deepEqual(readSlotState(esp).state.B, { ok: true, tries: 0, hash: HB, version: '1.1.0' });
      });

      it('boot-complete.target failing: the slot is marked bad, the other slot first, one reboot', async () => {
        onTrial();
        const f = fakes({ result: 'failed', failedAt: () => ['health.service'] });
        assert.equal(await runBootGate(f.opts(60), 'B'), 'bad');
        const { state } = readSlotState(esp);
        assert.deepEqual(state, {
          order: ['A', 'B'],
          A: STAGED.A,
          B: { ok: false, tries: 0, hash: HB, version: '1.1.0' },
        });
        assert.equal(chooseSlot(state).slot, 'A');
        assert.equal(f.reboots(), 1);
        assert.deepEqual(f.slept, []);
        assert.match(
          logs.join('\n'),
          /slot B marked bad: boot-complete.target failed \(failed; failed: health.service\); rebooting into slot A/,
        );
        // The next boot starts from the first slot in ORDER and reports nothing: the gate records it.
        const rec = JSON.parse(readFileSync(join(stateDir, 'rollback.json'), 'utf8'));
        assert.deepEqual(
          { ...rec, at: 'T' },
          {
            at: 'T',
            failed: 'B',
            running: 'A',
            failedVersion: '1.1.0',
            runningVersion: STAGED.A.version,
            reason: 'boot-complete.target failed (failed; failed: health.service)',
          },
        );
      });

      it('a health unit failing during the healthy wait: bad, other slot first, one reboot', async () => {
        onTrial();
        const f = fakes({ failedAt: (call) => (call >= 10 ? ['db-check.service'] : []) });
        assert.equal(await runBootGate(f.opts(60), 'B'), 'bad');
        const { state } = readSlotState(esp);
        assert.deepEqual(state.order, ['A', 'B']);
        assert.deepEqual(state.B, { ok: false, tries: 0, hash: HB, version: '1.1.0' });
        assert.deepEqual(state.A, STAGED.A);
        assert.equal(f.reboots(), 1);
        assert.ok(f.slept.length >= 9 && f.slept.length < 60, `failed after ${f.slept.length} sleeps`);
        assert.match(logs.join('\n'), /slot B marked bad: db-check.service failed/);
      });

      it('a health unit failed at the very end of the wait: bad', async () => {
        onTrial();
        const f = fakes();
        const last = f.opts(3);
        const failing: GateOptions = {
          ...last,
          units: { ...last.units, failedHealthUnits: () => (f.slept.length >= 3 ? ['late.service'] : []) },
        };
        assert.equal(await runBootGate(failing, 'B'), 'bad');
        assert.equal(f.reboots(), 1);
        assert.equal(readSlotState(esp).state.B.ok, false);
      });

      it('a shutdown during the healthy wait: neither committed nor marked bad, the slot stays on trial', async () => {
        onTrial();
        const f = fakes();
        const before = readSlotState(esp).state;
        const o: GateOptions = { ...f.opts(60), stopping: () => f.slept.length >= 5 };
        assert.equal(await runBootGate(o, 'B'), 'stopped');
        assert.deepEqual(readSlotState(esp).state, before);
        assert.equal(f.reboots(), 0);
        assert.doesNotMatch(logs.join('\n'), /committed|marked bad/);
      });
    });
  });
});
