// Exec*= parsing (prefixes, quoting, escapes, ";") and spawn-time $VAR expansion, as systemd 252.
import assert from 'node:assert/strict';
import { expandCommandVariables, parseExecLine } from '../../units/exec.js';

type Flags = { i?: boolean; at?: boolean; colon?: boolean; mode?: '+' | '!' | '!!' };
const cmd = (path: string, argv: string[], f: Flags = {}) => ({
  path,
  argv,
  ignoreFailure: !!f.i,
  argv0Override: !!f.at,
  noSubstitution: !!f.colon,
  privileged: !!f.mode,
  ...(f.mode ? { privilegeMode: f.mode } : {}),
});

const TABLE: [string, ReturnType<typeof cmd>[]][] = [
  ['/bin/true', [cmd('/bin/true', ['/bin/true'])]],
  [
    "-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM",
    [cmd('/sbin/agetty', ['/sbin/agetty', '-o', '-p -- \\u', '--noclear', '-', '$TERM'], { i: true })],
  ],
  ['@/bin/sh mysh -c "echo hi"', [cmd('/bin/sh', ['mysh', '-c', 'echo hi'], { at: true })]],
  ['-@/bin/sh sh', [cmd('/bin/sh', ['sh'], { i: true, at: true })]],
  [':/bin/echo $X', [cmd('/bin/echo', ['/bin/echo', '$X'], { colon: true })]],
  ['+/usr/bin/install -d /x', [cmd('/usr/bin/install', ['/usr/bin/install', '-d', '/x'], { mode: '+' })]],
  ['!/bin/id', [cmd('/bin/id', ['/bin/id'], { mode: '!' })]],
  [
    '!!/lib/systemd/systemd-timesyncd',
    [cmd('/lib/systemd/systemd-timesyncd', ['/lib/systemd/systemd-timesyncd'], { mode: '!!' })],
  ],
  ['-!!@:/bin/x a', [cmd('/bin/x', ['a'], { i: true, at: true, colon: true, mode: '!!' })]],
  ['networkctl reload', [cmd('networkctl', ['networkctl', 'reload'])]],
  [
    '/bin/echo a"b c"d \'e f\' "" \\s \\x41\\101 \\t\\n',
    [cmd('/bin/echo', ['/bin/echo', 'ab cd', 'e f', '', ' ', 'AA', '\t\n'])],
  ],
  ['/bin/echo "\\xc3\\xa4" \\u00e4', [cmd('/bin/echo', ['/bin/echo', 'ä', 'ä'])]],
  [
    '/bin/a 1 ; /bin/b 2;3 ; -/bin/c',
    [cmd('/bin/a', ['/bin/a', '1']), cmd('/bin/b', ['/bin/b', '2;3']), cmd('/bin/c', ['/bin/c'], { i: true })],
  ],
  ['/bin/a \\; ";" x', [cmd('/bin/a', ['/bin/a', ';', ';', 'x'])]],
  ['//usr//bin/./env', [cmd('/usr/bin/env', ['//usr//bin/./env'])]],
  ['', []],
  ['   ', []],
];

describe('units/exec: parseExecLine', () => {
  for (const [value, expected] of TABLE) {
    it(JSON.stringify(value), () => assert.deepEqual(parseExecLine(value), expected));
  }
  const BAD: [string, RegExp][] = [
    ['/bin/echo "unterminated', /unterminated quote/],
    ['/bin/echo \\q', /bad escape/],
    ['/bin/echo \\x00', /bad escape/],
    ['/bin/echo trailing\\', /trailing backslash/],
    ['--/bin/true', /neither a valid program name nor an absolute path/],
    ['+!/bin/true', /neither a valid program name/],
    ['bin/true', /neither a valid program name/],
    ['-', /empty program path/],
    ['@/bin/true', /empty argv\[0\]/],
    ['/usr/bin/', /is a directory/],
  ];
  for (const [value, re] of BAD) {
    it(`refuses ${JSON.stringify(value)} with a TypeError naming it`, () => {
      assert.throws(
        () => parseExecLine(value),
        (e: Error) => e instanceof TypeError && re.test(e.message) && e.message.includes(JSON.stringify(value)),
      );
    });
  }
});

describe('units/exec: expandCommandVariables', () => {
  const env = new Map([
    ['ONE', 'a'],
    ['TWO', 'x  y'],
    ['Q', '"p q" r'],
    ['EMPTY', ''],
  ]);
  const TABLE: [string[], string[]][] = [
    [
      ['/bin/e', '$ONE'],
      ['/bin/e', 'a'],
    ],
    [
      ['/bin/e', '$TWO'],
      ['/bin/e', 'x', 'y'],
    ],
    [
      ['/bin/e', '${TWO}'],
      ['/bin/e', 'x  y'],
    ],
    [
      ['/bin/e', '$Q'],
      ['/bin/e', 'p q', 'r'],
    ],
    [
      ['/bin/e', '$UNSET', 'z'],
      ['/bin/e', 'z'],
    ],
    [['/bin/e', '$EMPTY'], ['/bin/e']],
    [
      ['/bin/e', '${UNSET}'],
      ['/bin/e', ''],
    ],
    [
      ['/bin/e', 'pre${ONE}post', 'a$ONE'],
      ['/bin/e', 'preapost', 'a$ONE'],
    ],
    [
      ['/bin/e', '$$ONE', 'cost$$'],
      ['/bin/e', '$ONE', 'cost$'],
    ],
    [['/bin/e', '$ONE/x'], ['/bin/e']], // systemd looks up a variable named "ONE/x": none
    [
      ['/bin/e', '${ONE'],
      ['/bin/e', '${ONE'],
    ],
  ];
  for (const [argv, expected] of TABLE) {
    it(`${argv.slice(1).join(' ')} → ${JSON.stringify(expected.slice(1))}`, () =>
      assert.deepEqual(expandCommandVariables(argv, env), expected));
  }
});
