// The host boot as data: the steps, their order and kinds, and the runner's two kinds of failure.
import assert from 'node:assert/strict';
import { HOST_STEPS, runHostSteps, type HostBoot, type HostStep } from '../../init/host-steps.js';

describe('init/host-steps', () => {
  it('mounts the API filesystems first (fatal), and every later step is best-effort', () => {
    assert.equal(HOST_STEPS[0].name, 'mount the API filesystems');
    assert.equal(HOST_STEPS[0].kind, 'fatal');
    assert.deepEqual(
      HOST_STEPS.slice(1)
        .filter((s) => s.kind !== 'best-effort')
        .map((s) => s.name),
      [],
    );
    const names = HOST_STEPS.map((s) => s.name);
    assert.ok(names.indexOf('read or make /etc/machine-id') < names.indexOf('read the slot state'));
    assert.equal(new Set(names).size, names.length, 'step names are unique');
  });

  it('goes on after a best-effort step fails and stops at a fatal one', () => {
    const ran: string[] = [];
    const boot = {} as HostBoot;
    const step = (name: string, kind: HostStep['kind'], fail = false): HostStep => ({
      name,
      kind,
      run: () => {
        ran.push(name);
        if (fail) throw new Error(name);
      },
    });
    const warnings: string[] = [];
    const onWarn = (what: string, e: unknown) => warnings.push(`cannot ${what}: ${(e as Error).message}`);
    runHostSteps([step('a', 'best-effort', true), step('b', 'best-effort')], boot, onWarn);
    assert.throws(() => runHostSteps([step('c', 'fatal', true), step('d', 'best-effort')], boot, onWarn), /^Error: c$/);
    assert.deepEqual(ran, ['a', 'b', 'c']);
    assert.deepEqual(warnings, ['cannot a: a']);
  });
});
