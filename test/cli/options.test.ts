// Regression: `keel logs --since -5min` (the README's own line) failed with parseArgs' "argument is
// ambiguous": a value-taking option now binds the next word, as getopt_long does.
import assert from 'node:assert/strict';
import { bindOptionValues } from '../../cli/main.js';

describe('cli: option values', () => {
  const options = {
    since: { type: 'string', short: 'S' },
    lines: { type: 'string', short: 'n' },
    follow: { type: 'boolean', short: 'f' },
  } as const;

  it('binds a value that starts with a dash to its option, long or short', () => {
    assert.deepEqual(bindOptionValues(['--since', '-5min', '-b'], options), ['--since=-5min', '-b']);
    assert.deepEqual(bindOptionValues(['-S', '-10min', '-n', '-1'], options), ['--since=-10min', '--lines=-1']);
  });

  it('leaves flags, bound values, positionals and everything after -- alone', () => {
    assert.deepEqual(bindOptionValues(['-f', '--since=today', 'pinger'], options), ['-f', '--since=today', 'pinger']);
    assert.deepEqual(bindOptionValues(['--', '--since', '-x'], options), ['--', '--since', '-x']);
    assert.deepEqual(bindOptionValues(['--since'], options), ['--since'], "a missing value is still parseArgs' error");
  });
});
