// Byte sizes as people write them: binary and decimal units, case and spaces, and what is refused.
import assert from 'node:assert/strict';
import { parseSize } from '../../builder/size.js';

describe('builder/size', () => {
  it('reads binary units as powers of 1024', () => {
    assert.equal(parseSize('32MiB'), 32 * 1024 ** 2);
    assert.equal(parseSize('2G'), 2 * 1024 ** 3);
    assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
    assert.equal(parseSize('4K'), 4096);
    assert.equal(parseSize('1KiB'), 1024);
    assert.equal(parseSize('1M'), 1048576);
  });

  it('reads KB, MB and GB as powers of 1000', () => {
    assert.equal(parseSize('1KB'), 1000);
    assert.equal(parseSize('5MB'), 5_000_000);
    assert.equal(parseSize('3GB'), 3_000_000_000);
  });

  it('takes plain byte counts as numbers, digit strings and B', () => {
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize(0), 0);
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('512B'), 512);
  });

  it('ignores case and surrounding or inner spaces', () => {
    assert.equal(parseSize('512mib'), 512 * 1024 ** 2);
    assert.equal(parseSize(' 512 MiB '), 512 * 1024 ** 2);
    assert.equal(parseSize('1gb'), 1e9);
  });

  it('throws a TypeError naming the value it cannot read', () => {
    for (const bad of ['lots', '1.5G', '-1', '10XB', '', 'MiB', '1 2M', '0x10']) {
      assert.throws(
        () => parseSize(bad),
        (e: any) => {
          assert.ok(e instanceof TypeError, `${bad}: ${e}`);
          assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
          assert.match(e.message, /^not a size: /);
          return true;
        },
      );
    }
  });

  it('refuses negative, fractional and non-finite numbers', () => {
    for (const bad of [-1, 1.5, NaN, Infinity]) assert.throws(() => parseSize(bad), TypeError, String(bad));
  });
});
