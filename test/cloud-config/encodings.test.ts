// write_files encodings: each of coreos-cloudinit's eight names, content that decodes and content
// that does not, and Go's base64 rules (padding required, only line breaks ignored).
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { CONTENT_ENCODINGS, decodeGoContent, goBase64 } from '../../cloud-config/go-compat.js';
import { formatReport, validateCloudConfig } from '../../cloud-config/validate.js';

const TEXT = 'hello, keel\n';
const encode = (enc: string): string => {
  const gz = enc.startsWith('gz');
  const b64 = enc.endsWith('b64') || enc.endsWith('base64');
  const raw = gz ? gzipSync(TEXT) : Buffer.from(TEXT);
  return b64 ? raw.toString('base64') : raw.toString('latin1');
};
const doc = (enc: string, content: string) =>
  `#cloud-config\nwrite_files:\n  - path: /etc/x\n    encoding: ${enc}\n    content: ${JSON.stringify(content)}\n`;

describe('cloud-config write_files encodings', () => {
  it("knows exactly coreos-cloudinit's eight", () => {
    assert.deepEqual([...CONTENT_ENCODINGS].sort(), [
      'b64',
      'base64',
      'gz',
      'gz+b64',
      'gz+base64',
      'gzip',
      'gzip+b64',
      'gzip+base64',
    ]);
  });

  for (const enc of CONTENT_ENCODINGS) {
    it(`${enc}: content encoded so validates, and decodes to the text`, () => {
      const content = enc.startsWith('gz') && !enc.includes('+') ? gzipSync(TEXT).toString('base64') : encode(enc);
      // Raw gzip is binary: a document carries it as !!binary.
      const text =
        enc.startsWith('gz') && !enc.includes('+')
          ? `#cloud-config\nwrite_files:\n  - path: /etc/x\n    encoding: ${enc}\n    content: !!binary ${content}\n`
          : doc(enc, content);
      const v = validateCloudConfig(text);
      assert.deepEqual(v.report, []);
      const f = v.config!.write_files![0];
      assert.deepEqual(decodeGoContent(Buffer.from(f.content!, 'utf8'), f.encoding!), Buffer.from(TEXT));
    });

    it(`${enc}: content that does not decode is an error at the content line`, () => {
      assert.equal(
        formatReport(validateCloudConfig(doc(enc, 'not encoded!')).report),
        `line 5: error: content cannot be decoded as "${enc}"\n`,
      );
    });
  }

  it('hands raw gzip given as !!binary to the applier as gzip+base64 (bytes kept)', () => {
    const v = validateCloudConfig(
      '#cloud-config\nwrite_files:\n  - path: /a\n    encoding: gzip\n' +
        `    content: !!binary ${gzipSync(TEXT).toString('base64')}\n  - path: /b\n` +
        `    content: !!binary ${Buffer.from([0xff, 0, 1]).toString('base64')}\n`,
    );
    assert.deepEqual(v.report, []);
    assert.deepEqual(
      v.config!.write_files!.map((f) => [f.encoding, decodeGoContent(Buffer.from(f.content!), f.encoding!)]),
      [
        ['gzip+base64', Buffer.from(TEXT)],
        ['base64', Buffer.from([0xff, 0, 1])],
      ],
    );
  });

  it('reports an unknown encoding twice, as coreos-cloudinit did: invalid value, and undecodable content', () => {
    assert.equal(
      formatReport(validateCloudConfig(doc('rot13', 'uryyb')).report),
      'line 4: error: invalid value rot13\nline 5: error: content cannot be decoded as "rot13"\n',
    );
  });

  it('decodes a missing content (as coreos-cloudinit did, it cannot), naming the encoding line', () => {
    assert.equal(
      formatReport(validateCloudConfig('#cloud-config\nwrite_files:\n  - path: /x\n    encoding: base64\n').report),
      'line 4: error: content cannot be decoded as "base64"\n',
    );
  });

  it('catches a gzip stream cut short (coreos-cloudinit only checked its header)', () => {
    const cut = gzipSync(TEXT.repeat(50)).subarray(0, 30).toString('base64');
    assert.equal(
      formatReport(validateCloudConfig(doc('gzip+base64', cut)).report),
      'line 5: error: content cannot be decoded as "gzip+base64"\n',
    );
  });

  it("reads base64 as Go's StdEncoding: padding needed, line breaks ignored, nothing else", () => {
    assert.deepEqual(goBase64('aGVsbG8K'), Buffer.from('hello\n'));
    assert.deepEqual(goBase64('aGVs\nbG8K\r\n'), Buffer.from('hello\n'));
    assert.deepEqual(goBase64(''), Buffer.alloc(0));
    assert.deepEqual(goBase64('aGk='), Buffer.from('hi'));
    for (const bad of ['aGk', 'aGVs bG8K', 'aGk=aGk=', 'a===', 'aGVsbG8K\t', '!!!!'])
      assert.equal(goBase64(bad), null, bad);
    assert.equal(
      formatReport(
        validateCloudConfig(
          '#cloud-config\nwrite_files:\n  - path: /x\n    encoding: b64\n    content: |\n      aGVs\n      bG8K\n',
        ).report,
      ),
      '',
    );
  });
});
