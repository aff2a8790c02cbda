// The validator's report (shape, order, what each kind of user-data gives) and `keel validate`.
// (The CLI verb is tested here, beside the library it drives.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { verb } from '../../cli/validate.js';
import { formatReport, validateCloudConfig } from '../../cloud-config/validate.js';
import { decodeGoContent, goDir, goFloat, goParseRequestURI } from '../../cloud-config/go-compat.js';
import { goQuote } from '../../cloud-config/rules.js';

describe('cloud-config validate: the report', () => {
  it('prints line N: kind: message, one entry a line', () => {
    assert.equal(
      formatReport([
        { line: 3, kind: 'warning', message: 'unrecognized key "x"' },
        { line: 4, kind: 'error', message: 'invalid value y' },
      ]),
      'line 3: warning: unrecognized key "x"\nline 4: error: invalid value y\n',
    );
    assert.equal(formatReport([]), '');
  });

  it('orders entries by line, then error, info, warning; and gives columns', () => {
    const v = validateCloudConfig(
      '#cloud-config\ncoreos:\n  write_files: []\n  units:\n    - command: lol\n' +
        'write_files:\n  - encoding: b64\n    content: "!"\n',
    );
    assert.deepEqual(
      v.report.map((e) => `${e.line}:${e.column} ${e.kind} ${e.message}`),
      [
        "3:3 info write_files doesn't belong under coreos",
        '3:3 warning unrecognized key "write_files"',
        '5:7 error invalid value lol',
        '8:5 error content cannot be decoded as "b64"',
      ],
    );
  });

  it('gives scripts and empty user-data no report and no config', () => {
    for (const s of ['#!/bin/sh\nexit 1\n', ''])
      assert.deepEqual(validateCloudConfig(s), { kind: s ? 'script' : 'empty', report: [], config: null });
  });

  it('gives Ignition no report (as coreos-cloudinit) but a notice that Keel does not take it', () => {
    assert.deepEqual(validateCloudConfig('{"ignition":{"version":"3.0.0"}}'), {
      kind: 'ignition',
      report: [],
      config: null,
      notice: 'Ignition configs are not supported by Keel, use cloud-config',
    });
  });

  it('gives a config with the warnings, and with errors too (the caller decides not to apply)', () => {
    const v = validateCloudConfig(
      '#cloud-config\nhostname: a\nbogus: 1\ncoreos:\n  units:\n    - name: x.service\n      command: bounce\n',
    );
    assert.deepEqual(v.config, { hostname: 'a', coreos: { units: [{ name: 'x.service', command: 'bounce' }] } });
    assert.ok(v.report.some((e) => e.kind === 'error'));
  });

  it('reads a document that is not a mapping as an empty config, as coreos-cloudinit did', () => {
    for (const s of ['#cloud-config\n', '#cloud-config\n- a\n', '#cloud-config\njust text\n'])
      assert.deepEqual(validateCloudConfig(s).config, {}, s);
  });
});

describe('cloud-config validate: Go behaviours reproduced', () => {
  it('url.ParseRequestURI for the discovery URL', () => {
    for (const ok of [
      'https://discovery.etcd.io/0000',
      'http://custom.domain/mytoken',
      '/abs/path',
      'mailto:x@y',
      'http://[::1]:4001/x',
      'http://u:p@h:1/?q',
      'etcd:',
      '*',
    ])
      assert.ok(goParseRequestURI(ok), ok);
    for (const bad of [
      'disco',
      '',
      'discovery.etcd.io/x',
      'http://a b/',
      'http://h:port/',
      'http://h/%zz',
      '://x',
      'http://h\n/',
      '1http://x',
    ])
      assert.ok(!goParseRequestURI(bad), bad);
  });

  it('path.Dir for the /usr check, /usrlocal included as coreos-cloudinit had it', () => {
    assert.deepEqual(['/usr/x', '/tmp/../usr/x', '/usr', '/usr/', 'usr/x', '/a//b/', ''].map(goDir), [
      '/usr',
      '/usr',
      '/',
      '/usr',
      'usr',
      '/a/b',
      '.',
    ]);
    assert.deepEqual(
      validateCloudConfig('#cloud-config\nwrite_files:\n  - path: /usrlocal/x\n').report.map((e) => e.message),
      ['file cannot be written to a read-only filesystem'],
    );
  });

  it('%q and %v', () => {
    assert.equal(goQuote('a"b\\c\td\x01é'), '"a\\"b\\\\c\\td\\x01é"');
    assert.deepEqual([1.5, 100, 1e21, 1e-5, 0.0001, 2.5e-7].map(goFloat), [
      '1.5',
      '100',
      '1e+21',
      '1e-05',
      '0.0001',
      '2.5e-07',
    ]);
  });

  it('DecodeContent refuses unknown encodings', () => {
    assert.ok(decodeGoContent(Buffer.from('x'), 'rot13') instanceof Error);
    assert.deepEqual(decodeGoContent(Buffer.from('x'), ''), Buffer.from('x'));
  });
});

describe('keel validate FILE', () => {
  let dir: string;
  let out: string;
  let err: string;
  const realOut = process.stdout.write;
  const realErr = process.stderr.write;
  const run = async (name: string, content: string | Buffer) => {
    writeFileSync(join(dir, name), content);
    out = '';
    err = '';
    process.stdout.write = ((s: string) => {
      out += s;
      return true;
    }) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => {
      err += s;
      return true;
    }) as typeof process.stderr.write;
    try {
      return await verb.run({}, [join(dir, name)]);
    } finally {
      process.stdout.write = realOut;
      process.stderr.write = realErr;
    }
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-validate-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints nothing and exits 0 for a clean cloud-config (gzipped too)', async () => {
    assert.equal(await run('ok.yml', '#cloud-config\nhostname: a\n'), 0);
    assert.equal(out, '');
    assert.equal(await run('ok.yml.gz', gzipSync('#cloud-config\nhostname: a\n')), 0);
  });

  it('prints the report and exits 1 when anything is reported, warnings included', async () => {
    assert.equal(await run('warn.yml', '#cloud-config\nhostname: a\nbogus: 1\n'), 1);
    assert.equal(out, 'line 3: warning: unrecognized key "bogus"\n');
    assert.equal(await run('bad.yml', 'hostname: a\n'), 1);
    assert.equal(out, 'line 1: error: must be "#cloud-config" or begin with "#!"\n');
  });

  it('exits 0 for a script, and 1 for Ignition with the reason on stderr', async () => {
    assert.equal(await run('s.sh', '#!/bin/sh\n'), 0);
    assert.equal(await run('i.json', '{"ignition":{"version":"3.0.0"}}'), 1);
    assert.equal(out, '');
    assert.match(err, /i\.json: Ignition configs are not supported by Keel, use cloud-config\n$/);
  });

  it('exits 2 when the file cannot be read, and refuses anything but one file', async () => {
    out = '';
    err = '';
    process.stderr.write = ((s: string) => {
      err += s;
      return true;
    }) as typeof process.stderr.write;
    try {
      assert.equal(await verb.run({}, ['/nonexistent/user-data']), 2);
    } finally {
      process.stderr.write = realErr;
    }
    assert.equal(err, 'keel validate: cannot read /nonexistent/user-data: ENOENT\n');
    await assert.rejects(verb.run({}, []), TypeError);
    await assert.rejects(verb.run({}, ['a', 'b']), TypeError);
  });
});
