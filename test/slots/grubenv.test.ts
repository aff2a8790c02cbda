import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGrubenv, encodeGrubenv, GRUBENV_SIGNATURE, setGrubenvVars } from '../../slots/grubenv.js';

// Goldens written by grub-editenv 2.06 (Debian 2.06-13+deb12u2). All but grubenv-debian-create.bin
// start from a file holding just the signature and '#' padding (what upstream `grub-editenv create`
// writes), then:
//   grubenv-a1-bx.bin       grub-editenv F set a=1 b=x
//   grubenv-a1-byy-cz.bin   that file, then grub-editenv F set b=yy c=z
//   grubenv-escaped.bin     grub-editenv F set 'path=C:\dir\' $'msg=two\nlines' 'eq=a=b#c'
//   grubenv-debian-create.bin  grub-editenv F create (Debian adds a "# WARNING" line); set a=1 b=x
const golden = (name: string) => readFileSync(new URL(`../../../test/golden/${name}`, import.meta.url));
const ESCAPED: [string, string][] = [
  ['path', 'C:\\dir\\'],
  ['msg', 'two\nlines'],
  ['eq', 'a=b#c'],
];

describe('builder/grubenv', () => {
  it('encodes byte for byte what grub-editenv writes', () => {
    assert.ok(encodeGrubenv({ a: '1', b: 'x' }).equals(golden('grubenv-a1-bx.bin')));
    assert.ok(
      encodeGrubenv([
        ['a', '1'],
        ['b', 'x'],
      ]).equals(golden('grubenv-a1-bx.bin')),
    );
  });

  it('escapes backslash and newline as GRUB does', () => {
    const buf = encodeGrubenv(ESCAPED);
    assert.ok(buf.equals(golden('grubenv-escaped.bin')));
    assert.ok(buf.includes('path=C:\\\\dir\\\\\nmsg=two\\\nlines\neq=a=b#c\n'));
    assert.deepEqual([...decodeGrubenv(buf)], ESCAPED);
  });

  it('round-trips values GRUB scripts care about', () => {
    const vars: [string, string][] = [
      ['next_entry', ''],
      ['keel_slot', 'A'],
      ['keel_tries_b', '3'],
      ['unicode', 'héllo ✓'],
      ['hash', '#x'],
    ];
    assert.deepEqual([...decodeGrubenv(encodeGrubenv(vars))], vars);
  });

  it('reads grub-editenv files, skipping comments and padding', () => {
    assert.deepEqual(
      [...decodeGrubenv(golden('grubenv-debian-create.bin'))],
      [
        ['a', '1'],
        ['b', 'x'],
      ],
    );
    assert.deepEqual(
      [...decodeGrubenv(golden('grubenv-a1-byy-cz.bin'))],
      [
        ['a', '1'],
        ['b', 'yy'],
        ['c', 'z'],
      ],
    );
  });

  it('sets variables in place and appends new ones, as grub-editenv set does', () => {
    assert.ok(setGrubenvVars(golden('grubenv-a1-bx.bin'), { b: 'yy', c: 'z' }).equals(golden('grubenv-a1-byy-cz.bin')));
    const unset = setGrubenvVars(golden('grubenv-a1-byy-cz.bin'), [
      ['a', null],
      ['c', 'w'],
    ]);
    assert.deepEqual(
      [...decodeGrubenv(unset)],
      [
        ['b', 'yy'],
        ['c', 'w'],
      ],
    );
  });

  it('fills exactly 1024 bytes and rejects one byte more', () => {
    const room = 1024 - GRUBENV_SIGNATURE.length - 'k=\n'.length;
    const full = encodeGrubenv({ k: 'v'.repeat(room) });
    assert.equal(full.length, 1024);
    assert.equal(decodeGrubenv(full).get('k'), 'v'.repeat(room));
    assert.throws(() => encodeGrubenv({ k: 'v'.repeat(room + 1) }), {
      code: 'EGRUBENV',
      message: /cannot encode grubenv: 1025 bytes/,
    });
    // An escaped newline takes two bytes.
    assert.throws(() => encodeGrubenv({ k: '\n'.repeat(room / 2 + 1) }), { code: 'EGRUBENV' });
  });

  it('rejects names GRUB would read back differently', () => {
    for (const bad of ['', 'a=b', '#a', 'a\nb', 'a\\b']) {
      assert.throws(
        () => encodeGrubenv([[bad, '1']]),
        { name: 'TypeError', message: /invalid variable name/ },
        JSON.stringify(bad),
      );
    }
    assert.throws(() => encodeGrubenv({ a: 1 as unknown as string }), { name: 'TypeError', message: /received 1/ });
    assert.throws(
      () =>
        encodeGrubenv([
          ['a', '1'],
          ['a', '2'],
        ]),
      { name: 'TypeError', message: /given twice/ },
    );
  });

  it('rejects blocks without the signature or of the wrong size', () => {
    assert.throws(() => decodeGrubenv(Buffer.alloc(1024, '#')), { code: 'EGRUBENV', message: /signature/ });
    assert.throws(() => decodeGrubenv(golden('grubenv-a1-bx.bin').subarray(0, 512)), {
      code: 'EGRUBENV',
      message: /expected 1024 bytes, received 512/,
    });
    const broken = Buffer.from(golden('grubenv-a1-bx.bin'));
    broken.fill('x', GRUBENV_SIGNATURE.length + 8); // last line never ends
    assert.throws(() => decodeGrubenv(broken), { code: 'EGRUBENV', message: /offset/ });
  });

  describe('read by grub-editenv', function () {
    let dir = '';
    before(function () {
      assert.ok(
        !spawnSync('grub-editenv', ['--version'], { stdio: 'ignore' }).error,
        'grub-editenv missing: run make deps (grub-common)',
      );
      dir = mkdtempSync(join(tmpdir(), 'keel-grubenv-'));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));

    it('lists our variables, escapes undone', () => {
      const file = join(dir, 'grubenv');
      writeFileSync(file, encodeGrubenv([['keel_slot', 'B'], ...ESCAPED]));
      const listed = execFileSync('grub-editenv', [file, 'list'], { encoding: 'utf8' });
      assert.equal(listed, 'keel_slot=B\npath=C:\\dir\\\nmsg=two\nlines\neq=a=b#c\n');
      // And grub-editenv can keep editing it in place.
      execFileSync('grub-editenv', [file, 'set', 'keel_slot=A', 'extra=1']);
      assert.deepEqual(decodeGrubenv(readFileSync(file)).get('keel_slot'), 'A');
      assert.deepEqual([...decodeGrubenv(readFileSync(file)).keys()], ['keel_slot', 'path', 'msg', 'eq', 'extra']);
    });
  });
});
