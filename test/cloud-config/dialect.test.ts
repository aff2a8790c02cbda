// What user-data is (first line, after gunzip) and the $private_ipv4-style substitutions.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import {
  detectUserData,
  IGNITION_NOT_SUPPORTED,
  NOT_CLOUD_CONFIG,
  substituteVariables,
} from '../../cloud-config/dialect.js';
import { formatReport, validateCloudConfig } from '../../cloud-config/validate.js';

const kind = (s: string | Buffer) => detectUserData(s).kind;

describe('cloud-config dialect: detecting user-data', () => {
  it('reads #cloud-config alone on the first line as cloud-config, trailing blanks and CRLF included', () => {
    for (const s of [
      '#cloud-config\nhostname: a\n',
      '#cloud-config',
      '#cloud-config\r\nhostname: a\r\n',
      '#cloud-config \t\nx: 1',
    ])
      assert.equal(kind(s), 'cloud-config', JSON.stringify(s));
    for (const s of [' #cloud-config\n', '#cloud-configs\n', '# cloud-config\n', 'hostname: a\n#cloud-config\n'])
      assert.equal(kind(s), 'unknown', JSON.stringify(s));
  });

  it('reads a first line starting with #! as a script, keeping its text', () => {
    assert.deepEqual(detectUserData('#!/bin/bash\necho hey'), { kind: 'script', text: '#!/bin/bash\necho hey' });
  });

  it('recognises Ignition JSON and says Keel does not support it', () => {
    for (const s of [
      '{"ignition":{"version":"3.0.0"}}',
      '{"ignitionVersion":1}',
      '{"ignitionVersion":0}',
      ' {"Ignition": {"version": "2.2.0"}, "storage": {}}\n',
    ]) {
      assert.deepEqual(detectUserData(s), { kind: 'ignition', text: s, message: IGNITION_NOT_SUPPORTED }, s);
    }
    assert.equal(IGNITION_NOT_SUPPORTED, 'Ignition configs are not supported by Keel, use cloud-config');
    for (const s of ['{}', '{"ignitionVersion":"1"}', '{"ignition":3}', '[{"ignition":{}}]', '{"ignition"'])
      assert.equal(kind(s), 'unknown', s);
  });

  it("rejects anything else with coreos-cloudinit's message", () => {
    assert.deepEqual(detectUserData('hostname: a\n'), {
      kind: 'unknown',
      text: 'hostname: a\n',
      message: NOT_CLOUD_CONFIG,
    });
    assert.equal(NOT_CLOUD_CONFIG, 'must be "#cloud-config" or begin with "#!"');
    assert.equal(
      formatReport(validateCloudConfig('hostname: a\n').report),
      'line 1: error: must be "#cloud-config" or begin with "#!"\n',
    );
  });

  it('calls empty user-data empty, and reports nothing for it', () => {
    assert.equal(kind(''), 'empty');
    assert.equal(kind(Buffer.alloc(0)), 'empty');
    assert.deepEqual(validateCloudConfig('').report, []);
  });

  it('unpacks gzipped user-data first (magic 1f 8b)', () => {
    const cc = '#cloud-config\nhostname: zipped\n';
    assert.deepEqual(detectUserData(gzipSync(cc)), { kind: 'cloud-config', text: cc });
    assert.equal(kind(gzipSync('#!/bin/sh\ntrue\n')), 'script');
    assert.equal(kind(gzipSync('{"ignition":{"version":"3.1.0"}}')), 'ignition');
    assert.equal(kind(gzipSync('')), 'empty');
    const v = validateCloudConfig(gzipSync('#cloud-config\nhostname: zipped\nbogus: 1\n'));
    assert.deepEqual(v.config, { hostname: 'zipped' });
    assert.equal(formatReport(v.report), 'line 3: warning: unrecognized key "bogus"\n');
  });

  it('says why gzipped user-data that does not unpack cannot be used', () => {
    const d = detectUserData(Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3]));
    assert.equal(d.kind, 'unknown');
    assert.match(d.message!, /^cannot unpack gzipped user-data: /);
    assert.equal(validateCloudConfig(Buffer.from([0x1f, 0x8b, 1])).report[0].kind, 'error');
  });
});

describe('cloud-config dialect: variable substitution', () => {
  const env = { privateIpv4: '10.0.0.2', publicIpv4: '203.0.113.7', privateIpv6: 'fd00::2', publicIpv6: '2001:db8::7' };

  it('replaces the four addresses wherever they appear', () => {
    assert.equal(
      substituteVariables('a: $private_ipv4:2379\nb: http://$public_ipv4/\nc: [$private_ipv6]\nd: $public_ipv6', env),
      'a: 10.0.0.2:2379\nb: http://203.0.113.7/\nc: [fd00::2]\nd: 2001:db8::7',
    );
    assert.equal(substituteVariables('$private_ipv4', env), '10.0.0.2');
  });

  it('keeps \\$name as the text $name', () => {
    assert.equal(substituteVariables('echo \\$private_ipv4 is $private_ipv4', env), 'echo $private_ipv4 is 10.0.0.2');
    assert.equal(substituteVariables('\\\\$public_ipv4', env), '\\$public_ipv4');
  });

  it('substitutes an unknown address as the empty string, as coreos-cloudinit did', () => {
    assert.equal(substituteVariables('addr: "$public_ipv4"', {}), 'addr: ""');
  });

  it('leaves other dollars alone and does not read $ in values as patterns', () => {
    assert.equal(substituteVariables('$HOME $private_ipv44 $privateipv4', env), '$HOME 10.0.0.24 $privateipv4');
    assert.equal(substituteVariables('x $public_ipv4', { publicIpv4: "$&$1$'" }), "x $&$1$'");
  });

  it("has coreos-cloudinit's quirk: of two names back to back, the second stays", () => {
    assert.equal(substituteVariables('$private_ipv4$private_ipv4', env), '10.0.0.2$private_ipv4');
  });
});
