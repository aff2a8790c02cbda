// docker's insecure-registries from daemon.json: which registries keel may speak plain HTTP to.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInsecureRegistry, readInsecureRegistries } from '../../containers/insecure-registries.js';

describe('insecure registries (docker daemon.json)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-insecure-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string) => {
    const f = join(dir, 'daemon.json');
    writeFileSync(f, text);
    return f;
  };

  it('reads the list; an absent file or key is an empty list', () => {
    assert.deepEqual(readInsecureRegistries(join(dir, 'none.json')), []);
    assert.deepEqual(readInsecureRegistries(file('{"log-level": "info"}')), []);
    assert.deepEqual(readInsecureRegistries(file('{"insecure-registries": ["10.0.2.2:5000", "10.1.0.0/16"]}')), [
      '10.0.2.2:5000',
      '10.1.0.0/16',
    ]);
  });

  it('names the file and the value when the JSON or an entry is bad', () => {
    assert.throws(() => readInsecureRegistries(file('{"insecure-registries": ')), {
      code: 'EJSON',
      message: /^cannot read .*daemon\.json: /,
    });
    assert.throws(() => readInsecureRegistries(file('{"insecure-registries": "10.0.2.2"}')), {
      code: 'EJSON',
      message: /"insecure-registries" must be a list of registry names, received "10\.0\.2\.2"/,
    });
    assert.throws(() => readInsecureRegistries(file('{"insecure-registries": ["10.0.0.0/40"]}')), {
      message: /entry "10\.0\.0\.0\/40" is not a host/,
    });
  });

  it('matches host:port exactly, a bare host on any port, and IPv4 CIDRs', () => {
    const list = ['10.0.2.2:5000', 'registry.lan', '192.168.0.0/16'];
    assert.equal(isInsecureRegistry('10.0.2.2:5000', list), true);
    assert.equal(isInsecureRegistry('10.0.2.2:5001', list), false);
    assert.equal(isInsecureRegistry('registry.lan:443', list), true);
    assert.equal(isInsecureRegistry('REGISTRY.lan', list), true);
    assert.equal(isInsecureRegistry('192.168.7.9:80', list), true);
    assert.equal(isInsecureRegistry('192.169.0.1', list), false);
    assert.equal(isInsecureRegistry('docker.io', list), false);
    assert.equal(isInsecureRegistry('10.0.2.2', ['0.0.0.0/0']), true);
  });
});
