// cloud-config's errors are KeelErrors: a stable code, "cannot VERB OBJECT: reason", and for
// user-data the file, line and column.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKeelError, KeelError } from '../../lib/errors.js';
import { decodeContent, parsePermissions } from '../../cloud-config/decode.js';
import { decodeGoContent } from '../../cloud-config/go-compat.js';
import { upsertUser } from '../../cloud-config/users-db.js';
import { stepError } from '../../cloud-config/apply.js';
import { checkUserDataFile, UserDataError } from '../../cloud-config/check-file.js';

const code = (code: string, message: RegExp) => (e: unknown) => {
  assert.ok(isKeelError(e, code), `want KeelError ${code}, got ${String(e)}`);
  assert.match((e as Error).message, message);
  return true;
};
const db = {
  passwd: 'root:x:0:0::/root:/bin/sh\n',
  shadow: 'root:*:1:0:99999:7:::\n',
  group: 'root:x:0:\nusers:x:100:\n',
};

describe('cloud-config errors: KeelError codes', () => {
  it('decodeContent: EENCODING for an unknown encoding, EDECODE for bad base64 or gzip', () => {
    assert.throws(
      () => decodeContent('x', 'rot13'),
      code('EENCODING', /^cannot decode content as rot13: unsupported encoding$/),
    );
    assert.throws(
      () => decodeContent('!!', 'base64'),
      code('EDECODE', /^cannot decode content as base64: not valid base64$/),
    );
    assert.throws(
      () => decodeContent('aGVsbG8K', 'gzip+base64'),
      code('EDECODE', /^cannot decode content as gzip\+base64: /),
    );
  });

  it('decodeGoContent returns (not throws) EDECODE and EENCODING KeelErrors', () => {
    assert.ok(isKeelError(decodeGoContent(Buffer.from('!!'), 'base64'), 'EDECODE'));
    assert.ok(isKeelError(decodeGoContent(Buffer.from('x'), 'rot13'), 'EENCODING'));
  });

  it('parsePermissions: EPERMISSIONS naming the value', () => {
    assert.throws(
      () => parsePermissions('0999'),
      code('EPERMISSIONS', /^cannot parse permissions "0999": want an octal mode/),
    );
  });

  it('upsertUser: EUSERNAME, ENOGROUP (primary and supplementary), ENOID', () => {
    assert.throws(
      () => upsertUser(db, { name: 'bad name' }),
      code('EUSERNAME', /^cannot create user bad name: invalid user name/),
    );
    assert.throws(
      () => upsertUser(db, { name: 'u', primary_group: 'nope' }),
      code('ENOGROUP', /^cannot create user u: primary group "nope"/),
    );
    assert.throws(
      () => upsertUser(db, { name: 'u', groups: ['nope'] }),
      code('ENOGROUP', /^cannot create user u: group "nope" does not exist$/),
    );
    const full = {
      ...db,
      passwd: db.passwd + Array.from({ length: 900 }, (_, i) => `s${i}:x:${100 + i}:0::/:/bin/sh\n`).join(''),
    };
    assert.throws(
      () => upsertUser(full, { name: 'sys', system: true }),
      code('ENOID', /^cannot create user sys: no free id between 100 and 999$/),
    );
  });

  it('stepError keeps a KeelError that already names the step, and wraps anything else keeping its code', () => {
    const own = new KeelError('EREADONLY', 'cannot write /usr/x: read-only', { path: '/usr/x' });
    assert.equal(stepError('write /usr/x', own), own);
    const inner = stepError('write /etc/x', new KeelError('EDECODE', 'cannot decode content as gz: bad'));
    assert.deepEqual([inner.code, inner.message], ['EDECODE', 'cannot write /etc/x: cannot decode content as gz: bad']);
    const errno = stepError(
      'write /etc/x',
      Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: '/etc/x' }),
    );
    assert.deepEqual(
      [errno.code, errno.path, errno.message],
      ['EACCES', '/etc/x', 'cannot write /etc/x: EACCES: permission denied'],
    );
    assert.equal(stepError('reload units', new Error('boom')).code, 'EAPPLY');
  });
});

describe('cloud-config errors: a user-data error names file, line and column', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-userdata-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives a YAML syntax error as EUSERDATA with the file, line and column', () => {
    const path = join(dir, 'user-data');
    writeFileSync(path, '#cloud-config\nhostname: a\nusers: [\n');
    const r = checkUserDataFile(path);
    assert.equal(r.ok, false);
    assert.ok(r.error instanceof UserDataError);
    const e = r.error as UserDataError;
    assert.deepEqual([e.code, e.path, e.line, e.column], ['EUSERDATA', path, 4, 1]);
    assert.equal(e.message, `cannot use user-data ${path}: line 4, column 1: did not find expected ',' or ']'`);
    assert.deepEqual(r.lines, [`${path}:4:1: error: did not find expected ',' or ']'`]);
  });

  it('gives a rule error at its key, and passes warnings with no error', () => {
    const path = join(dir, 'user-data');
    writeFileSync(path, '#cloud-config\nwrite_files:\n  - path: /x\n    encoding: base64\n    content: "!!"\n');
    const e = checkUserDataFile(path).error as UserDataError;
    assert.deepEqual([e.code, e.line, e.column], ['EUSERDATA', 5, 5]);
    writeFileSync(path, '#cloud-config\nbogus: 1\n');
    const ok = checkUserDataFile(path);
    assert.deepEqual([ok.ok, ok.error, ok.lines], [true, null, [`${path}:2:1: warning: unrecognized key "bogus"`]]);
  });

  it('gives an unreadable file its errno code', () => {
    const r = checkUserDataFile(join(dir, 'missing'));
    assert.deepEqual([r.ok, r.error?.code, r.error?.path], [false, 'ENOENT', join(dir, 'missing')]);
  });
});
