import assert from 'node:assert/strict';
import { blame, criticalChain, startupTime, type TimelineEntry } from '../../cli/analyze-timeline.js';

const T: TimelineEntry[] = [
  { unit: 'sysinit.target', activating: 100, active: 100, after: [] },
  { unit: 'slow.service', activating: 120, active: 2620, after: ['sysinit.target'] },
  { unit: 'fast.service', activating: 120, active: 150, after: ['sysinit.target'] },
  { unit: 'multi-user.target', activating: 2630, active: 2630, after: ['fast.service', 'slow.service'] },
];

describe('cli/analyze-timeline', () => {
  it('blames the slowest unit first', () => {
    assert.equal(blame(T).split('\n')[0].trim(), '2.500s slow.service');
  });
  it('follows the After= dependency that became active last', () => {
    assert.equal(
      criticalChain(T, 'multi-user.target'),
      'multi-user.target @2.630s\n  └─slow.service @2.620s +2.500s\n    └─sysinit.target @100ms\n',
    );
  });
  it('says when the target was reached, or that it was not', () => {
    assert.match(startupTime(T, 'multi-user.target'), /Startup finished in 2\.630s/);
    assert.match(startupTime(T, 'nope.target'), /has not been reached/);
  });
});
