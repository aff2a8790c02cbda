// /etc/keel/update.conf: defaults, every key, the environment-file syntax (quotes, comments, blank
// lines), legacy locksmith names, and FILE:LINE errors naming the value for every bad one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultUpdateConfig,
  loadUpdateConf,
  parseUpdateConf,
  UpdateConfigError,
  type UpdateConfig,
} from '../../update/config.js';

const FILE = '/etc/keel/update.conf';
const DEFAULTS: UpdateConfig = {
  server: null,
  group: 'stable',
  strategy: 'reboot',
  window: null,
  etcd: { endpoints: ['http://127.0.0.1:2379'], group: null },
  checkIntervalSeconds: 3600,
  healthySeconds: 60,
};

/** Asserts that `text` is refused with exactly `message` (after "FILE:LINE: ") at `line`. */
function refuses(text: string, line: number, message: string, code = 'bad-value') {
  assert.throws(
    () => parseUpdateConf(text, FILE),
    (e: unknown) => {
      assert.ok(e instanceof UpdateConfigError, String(e));
      assert.equal(e.message, `${FILE}:${line}: ${message}`);
      assert.equal(e.file, FILE);
      assert.equal(e.line, line);
      assert.equal(e.code, code);
      return true;
    },
  );
}

describe('update/config', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-update-conf-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing file means the defaults', () => {
    assert.deepEqual(loadUpdateConf(join(dir, 'nope.conf')), DEFAULTS);
    assert.deepEqual(defaultUpdateConfig(), DEFAULTS);
  });

  it('an empty file, or one of comments and blank lines, means the defaults', () => {
    assert.deepEqual(parseUpdateConf('', FILE), DEFAULTS);
    assert.deepEqual(parseUpdateConf('# written by cloud-config\n\n   \n  # indented comment\n', FILE), DEFAULTS);
  });

  it('reads what cloud-config writes', () => {
    const p = join(dir, 'update.conf');
    writeFileSync(p, 'GROUP=beta\nSERVER=https://updates.example.com/v1/update/\nREBOOT_STRATEGY=off\n');
    assert.deepEqual(loadUpdateConf(p), {
      ...DEFAULTS,
      group: 'beta',
      server: 'https://updates.example.com/v1/update/',
      strategy: 'off',
    });
  });

  it('parses every key, with double, single and no quotes, comments, CRLF and blank lines', () => {
    const text = [
      '# /etc/keel/update.conf',
      '',
      'GROUP="alpha"',
      "SERVER='http://10.0.0.1:8080/update'",
      'REBOOT_STRATEGY=etcd-lock   # take the lock first',
      'LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00',
      'LOCKSMITHD_REBOOT_WINDOW_LENGTH="1h30m" # trailing comment',
      'LOCKSMITHD_ENDPOINT=http://10.0.0.2:2379, https://10.0.0.3:2379',
      'LOCKSMITHD_GROUP=web',
      'LOCKSMITHD_ETCD_USERNAME=root',
      'LOCKSMITHD_ETCD_PASSWORD="p#ss \\"w\\" $x"',
      '  CHECK_INTERVAL = 600',
      'HEALTHY_SECONDS=0\r',
      'SOME_FLATCAR_KEY=whatever it is',
      '',
    ].join('\n');
    assert.deepEqual(parseUpdateConf(text, FILE), {
      server: 'http://10.0.0.1:8080/update',
      group: 'alpha',
      strategy: 'etcd-lock',
      window: { start: 'Thu 23:00', length: '1h30m' },
      etcd: {
        endpoints: ['http://10.0.0.2:2379', 'https://10.0.0.3:2379'],
        group: 'web',
        username: 'root',
        password: 'p#ss "w" $x',
      },
      checkIntervalSeconds: 600,
      healthySeconds: 0,
    });
  });

  it('accepts every strategy, a later assignment wins and an empty value means the default', () => {
    for (const s of ['reboot', 'off', 'etcd-lock', 'best-effort'] as const) {
      assert.equal(parseUpdateConf(`REBOOT_STRATEGY=${s}`, FILE).strategy, s);
    }
    assert.equal(parseUpdateConf('REBOOT_STRATEGY=off\nREBOOT_STRATEGY=etcd-lock\n', FILE).strategy, 'etcd-lock');
    assert.deepEqual(
      parseUpdateConf('REBOOT_STRATEGY=\nGROUP=""\nLOCKSMITHD_GROUP=\nCHECK_INTERVAL=\n', FILE),
      DEFAULTS,
    );
  });

  it("reads locksmith's legacy REBOOT_WINDOW_* names; LOCKSMITHD_* ones win", () => {
    assert.deepEqual(parseUpdateConf('REBOOT_WINDOW_START=04:00\nREBOOT_WINDOW_LENGTH=2h\n', FILE).window, {
      start: '04:00',
      length: '2h',
    });
    const both =
      'REBOOT_WINDOW_START=04:00\nREBOOT_WINDOW_LENGTH=2h\n' +
      'LOCKSMITHD_REBOOT_WINDOW_START=Mon 1:05\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=90m\n';
    assert.deepEqual(parseUpdateConf(both, FILE).window, { start: 'Mon 1:05', length: '90m' });
  });

  it('ignores unknown keys', () => {
    assert.deepEqual(parseUpdateConf('FOO=bar\nLOCKSMITHD_ETCD_CAFILE=/x\nREBOOT_STRATEGY_TYPO=x\n', FILE), DEFAULTS);
  });

  it('rejects an unknown strategy naming file, line and value', () => {
    refuses(
      'GROUP=stable\n\nREBOOT_STRATEGY="sometimes"\n',
      3,
      'REBOOT_STRATEGY="sometimes" is not one of reboot, off, etcd-lock, best-effort',
    );
    refuses('REBOOT_STRATEGY=Reboot', 1, 'REBOOT_STRATEGY="Reboot" is not one of reboot, off, etcd-lock, best-effort');
  });

  it('rejects a bad window start or length, and one without the other', () => {
    refuses(
      'LOCKSMITHD_REBOOT_WINDOW_START=Thu 25:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n',
      1,
      'LOCKSMITHD_REBOOT_WINDOW_START="Thu 25:00" is not a valid reboot window start: hour must be between 0 and 23',
    );
    refuses(
      'LOCKSMITHD_REBOOT_WINDOW_START=Thursday 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n',
      1,
      'LOCKSMITHD_REBOOT_WINDOW_START="Thursday 23:00" is not a valid reboot window start: ' +
        'unknown day "Thursday" (use Sun, Mon, Tue, Wed, Thu, Fri or Sat)',
    );
    refuses(
      'LOCKSMITHD_REBOOT_WINDOW_START=04:00\n# x\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1x\n',
      3,
      'LOCKSMITHD_REBOOT_WINDOW_LENGTH="1x" is not a valid reboot window ' +
        'length: unknown unit "x" (use ns, us, ms, s, m or h)',
    );
    refuses(
      'LOCKSMITHD_REBOOT_WINDOW_START=04:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=0s\n',
      2,
      'LOCKSMITHD_REBOOT_WINDOW_LENGTH="0s" is not a valid reboot window length: must be longer than 0',
    );
    refuses(
      'REBOOT_WINDOW_START=04:00\nREBOOT_WINDOW_LENGTH=8d\n',
      2,
      'REBOOT_WINDOW_LENGTH="8d" is not a valid reboot window length: unknown unit "d" (use ns, us, ms, s, m or h)',
    );
    refuses(
      'GROUP=x\nLOCKSMITHD_REBOOT_WINDOW_START=04:00\n',
      2,
      'LOCKSMITHD_REBOOT_WINDOW_START is set without LOCKSMITHD_REBOOT_WINDOW_LENGTH: set both or neither',
    );
    refuses(
      'LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n',
      1,
      'LOCKSMITHD_REBOOT_WINDOW_LENGTH is set without LOCKSMITHD_REBOOT_WINDOW_START: set both or neither',
    );
  });

  it('rejects bad numbers', () => {
    for (const v of ['0', '-5', '1.5', '10s', 'hourly', '0x10']) {
      refuses(`CHECK_INTERVAL=${v}`, 1, `CHECK_INTERVAL="${v}" is not a whole number of seconds >= 1`);
    }
    for (const v of ['-1', '1e3', 'sixty']) {
      refuses(`\nHEALTHY_SECONDS='${v}'`, 2, `HEALTHY_SECONDS="${v}" is not a whole number of seconds >= 0`);
    }
  });

  it('rejects bad URLs and a password without a user', () => {
    refuses('SERVER=updates.example.com', 1, 'SERVER="updates.example.com" is not an http:// or https:// URL');
    refuses(
      'LOCKSMITHD_ENDPOINT=http://127.0.0.1:2379,127.0.0.1:4001',
      1,
      'LOCKSMITHD_ENDPOINT="http://127.0.0.1:2379,127.0.0.1:4001" is not an http:// or https:// URL',
    );
    refuses('LOCKSMITHD_ENDPOINT=" , "', 1, 'LOCKSMITHD_ENDPOINT=" , " lists no endpoint');
    refuses(
      'LOCKSMITHD_ETCD_PASSWORD=secret',
      1,
      'LOCKSMITHD_ETCD_PASSWORD="secret" is set without LOCKSMITHD_ETCD_USERNAME',
    );
  });

  it('rejects lines that are not KEY=VALUE, and broken quoting', () => {
    refuses(
      'GROUP=beta\nREBOOT_STRATEGY reboot\n',
      2,
      'expected KEY=VALUE with an optionally quoted value, got "REBOOT_STRATEGY reboot"',
      'syntax',
    );
    refuses(
      'export GROUP=beta',
      1,
      'expected KEY=VALUE with an optionally quoted value, got "export GROUP=beta"',
      'syntax',
    );
    refuses('GROUP="beta', 1, 'expected KEY=VALUE with an optionally quoted value, got "GROUP=\\"beta"', 'syntax');
    refuses(
      "GROUP='beta' x",
      1,
      'expected KEY=VALUE with an optionally quoted value, got "GROUP=\'beta\' x"',
      'syntax',
    );
    refuses('1GROUP=beta', 1, 'expected KEY=VALUE with an optionally quoted value, got "1GROUP=beta"', 'syntax');
  });

  it('an unreadable file (here a directory) is an error naming it, not the defaults', () => {
    assert.throws(
      () => loadUpdateConf(dir),
      (e: unknown) =>
        e instanceof UpdateConfigError &&
        e.code === 'unreadable' &&
        e.line === 0 &&
        e.message.startsWith(`${dir}: cannot read: EISDIR`),
    );
  });
});
