import assert from 'node:assert/strict';
import { checkHolds, firstFailure, type CheckFacts } from '../../init/conditions.js';
import type { Check } from '../../units/types.js';

const facts: CheckFacts = {
  stat: (p) => ({ '/etc/present': { isDirectory: false, size: 3, mode: 0o644 }, '/etc/empty': { isDirectory: false, size: 0, mode: 0o644 },
    '/usr/bin/tool': { isDirectory: false, size: 9, mode: 0o755 }, '/var': { isDirectory: true, size: 0, mode: 0o755 } } as Record<string, { isDirectory: boolean; size: number; mode: number }>)[p] ?? null,
  readdir: (p) => (p === '/var' ? ['lib'] : p === '/srv' ? [] : null),
  cmdline: 'console=ttyS0 keel.debug quiet=1', hostname: 'web-1', machineId: 'abc', virtualization: 'qemu', capabilities: 1n << 21n,
};
const c = (kind: string, value: string, o: Partial<Check> = {}): Check => ({ kind, value, assert: false, trigger: false, negate: false, file: 'f', line: 1, ...o });

describe('init/conditions', () => {
  it('evaluates each kind against the facts', () => {
    const table: [Check, boolean][] = [
      [c('PathExists', '/etc/present'), true], [c('PathExists', '/nope'), false],
      [c('PathIsDirectory', '/var'), true], [c('PathIsDirectory', '/etc/present'), false],
      [c('FileNotEmpty', '/etc/present'), true], [c('FileNotEmpty', '/etc/empty'), false],
      [c('DirectoryNotEmpty', '/var'), true], [c('DirectoryNotEmpty', '/srv'), false],
      [c('FileIsExecutable', '/usr/bin/tool'), true], [c('FileIsExecutable', '/etc/present'), false],
      [c('KernelCommandLine', 'keel.debug'), true], [c('KernelCommandLine', 'quiet'), true], [c('KernelCommandLine', 'quiet=2'), false],
      [c('Host', 'web-1'), true], [c('Virtualization', 'vm'), true], [c('Virtualization', 'no'), false], [c('Virtualization', 'qemu'), true],
      [c('Capability', 'CAP_SYS_ADMIN'), true], [c('Capability', 'CAP_NET_ADMIN'), false],
    ];
    for (const [check, want] of table) assert.equal(checkHolds(check, facts), want, `${check.kind}=${check.value}`);
  });

  it('applies ! and | as systemd does, and keeps Assert apart from Condition', () => {
    assert.equal(firstFailure([c('PathExists', '/nope', { negate: true })], facts, false), null);
    // Triggering checks: one of them suffices.
    assert.equal(firstFailure([c('PathExists', '/nope', { trigger: true }), c('PathExists', '/etc/present', { trigger: true })], facts, false), null);
    assert.equal(firstFailure([c('PathExists', '/nope', { trigger: true }), c('PathExists', '/nope2', { trigger: true })], facts, false)?.value, '/nope');
    // A failing non-triggering check fails regardless of triggers.
    assert.equal(firstFailure([c('PathExists', '/etc/present', { trigger: true }), c('Host', 'db-1')], facts, false)?.kind, 'Host');
    const asserts = [c('PathExists', '/nope', { assert: true })];
    assert.equal(firstFailure(asserts, facts, false), null);
    assert.equal(firstFailure(asserts, facts, true)?.value, '/nope');
  });
});
