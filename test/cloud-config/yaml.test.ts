// YAML as coreos-cloudinit's go-yaml v1 read it (YAML 1.1 scalars), with the line and column of
// every node, and syntax errors in libyaml's words.
import assert from 'node:assert/strict';
import { parseYaml, type YNode } from '../../cloud-config/yaml.js';
import { resolvePlain } from '../../cloud-config/yaml-scalars.js';
import { formatReport, validateCloudConfig } from '../../cloud-config/validate.js';

const root = (s: string) => {
  const r = parseYaml(s);
  assert.equal(r.error, null, JSON.stringify(r.error));
  return r.root!;
};
const get = (n: YNode, ...path: (string | number)[]): YNode =>
  path.reduce<YNode>(
    (m, p) => (typeof p === 'number' ? m.items[p] : m.entries.find((e) => e.key.text === p)!.value),
    n,
  );
const errorOf = (s: string) => parseYaml(s).error;
const report = (s: string) => formatReport(validateCloudConfig(`#cloud-config\n${s}`).report);

describe('cloud-config yaml: YAML 1.1 traps, as go-yaml v1 typed them', () => {
  it('reads y, yes, on, true (any case go-yaml listed) as true, and n, no, off, false as false', () => {
    for (const t of ['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'true', 'True', 'TRUE'])
      assert.deepEqual([resolvePlain(t)?.kind, resolvePlain(t)?.value], ['bool', true], t);
    for (const t of ['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'false', 'False', 'FALSE'])
      assert.deepEqual([resolvePlain(t)?.kind, resolvePlain(t)?.value], ['bool', false], t);
    for (const t of ['yEs', 'oN', 'ye', 'enabled', 'tRUE']) assert.equal(resolvePlain(t), null, t);
  });

  it('types numbers as Go did: leading 0 is octal, 0x hex, underscores dropped, 08 a float, big ints floats', () => {
    const k = (t: string) => {
      const r = resolvePlain(t);
      return r && [r.kind, r.value];
    };
    assert.deepEqual(k('0744'), ['int', 484]);
    assert.deepEqual(k('744'), ['int', 744]);
    assert.deepEqual(k('0x1F'), ['int', 31]);
    assert.deepEqual(k('-12'), ['int', -12]);
    assert.deepEqual(k('1_000'), ['int', 1000]);
    assert.deepEqual(k('0b101'), ['int', 5]);
    assert.deepEqual(k('08'), ['float', 8]);
    assert.deepEqual(k('1.5'), ['float', 1.5]);
    assert.deepEqual(k('.5'), ['float', 0.5]);
    assert.deepEqual(k('1e3'), ['float', 1000]);
    assert.deepEqual(k('99999999999999999999'), ['float', 1e20]);
    assert.deepEqual(k('.inf'), ['float', Infinity]);
    assert.deepEqual(k('-.Inf'), ['float', -Infinity]);
    assert.deepEqual(k('~'), ['null', null]);
    assert.deepEqual(k('Null'), ['null', null]);
    for (const t of ['1e400', '1.2.3', '10:30', '2001-12-14', '0o17', '+', 'x1', '1a'])
      assert.equal(resolvePlain(t), null, t);
  });

  it('keeps the text for string fields: permissions 0744 is "0744", reboot_strategy off is "off"', () => {
    const v = validateCloudConfig(
      '#cloud-config\nhostname: 0x10\nwrite_files:\n  - path: /a\n' +
        '    permissions: 0744\n  - path: /b\n    permissions: 744\n' +
        'manage_etc_hosts: on\ncoreos:\n  update:\n    reboot_strategy: off\n    group: 1.10\n',
    );
    assert.deepEqual(v.report, []);
    assert.deepEqual(v.config, {
      hostname: '0x10',
      manage_etc_hosts: 'on',
      write_files: [
        { path: '/a', permissions: '0744' },
        { path: '/b', permissions: '744' },
      ],
      coreos: { update: { reboot_strategy: 'off', group: '1.10' } },
    });
  });

  it('gives booleans to bool fields only when YAML 1.1 calls them booleans', () => {
    const v = validateCloudConfig(
      '#cloud-config\ncoreos:\n  units:\n    - name: a.service\n' +
        '      enable: yes\n      runtime: Y\n      mask: off\n' +
        'users:\n  - name: u\n    system: y\n    no_create_home: NO\n    no_user_group: "yes"\n',
    );
    assert.equal(formatReport(v.report), 'line 12: warning: incorrect type for "no_user_group" (want bool)\n');
    assert.deepEqual(v.config, {
      coreos: { units: [{ name: 'a.service', enable: true, runtime: true, mask: false }] },
      users: [{ name: 'u', system: true, no_create_home: false }],
    });
  });

  it('reads keys with - as _, at every level', () => {
    const v = validateCloudConfig(
      '#cloud-config\nssh-authorized-keys: [k]\nwrite-files:\n  - path: /x\n' +
        'coreos:\n  update:\n    reboot-strategy: etcd-lock\n' +
        '  units:\n    - name: a.service\n      drop-ins:\n' +
        '        - name: 10-x.conf\n          content: "[Unit]"\nusers:\n' +
        '  - name: u\n    primary-group: g\n    no-user-group: true\n',
    );
    assert.deepEqual(v.report, []);
    assert.deepEqual(v.config, {
      ssh_authorized_keys: ['k'],
      write_files: [{ path: '/x' }],
      coreos: {
        update: { reboot_strategy: 'etcd-lock' },
        units: [{ name: 'a.service', drop_ins: [{ name: '10-x.conf', content: '[Unit]' }] }],
      },
      users: [{ name: 'u', primary_group: 'g', no_user_group: true }],
    });
    assert.equal(report('coreos:\n  etc-hosts: x\n'), 'line 3: warning: unrecognized key "etc_hosts"\n');
  });

  it('decodes !!binary to bytes, and refuses bad base64 at line 1 as go-yaml did', () => {
    const n = get(root('a: !!binary aGVsbG8K\nb: !!binary |\n  aGVs\n  bG8K\n'), 'a');
    assert.deepEqual([n.kind, n.value, n.text], ['binary', Buffer.from('hello\n'), 'hello\n']);
    assert.deepEqual(get(root('b: !!binary |\n  aGVs\n  bG8K\n'), 'b').value, Buffer.from('hello\n'));
    assert.deepEqual(errorOf('a: !!binary aGVsbG8'), {
      line: 1,
      column: 1,
      message: '!!binary value contains invalid base64 data',
    });
  });

  it('follows anchors, aliases and merge keys; takes the later of duplicate keys', () => {
    const r = root(
      'base: &b {name: x.service, enable: true}\nunits:\n  - *b\n  - <<: *b\n    name: y.service\nk: 1\nk: 2\n',
    );
    assert.deepEqual(
      get(r, 'units', 0).entries.map((e) => [e.key.text, e.value.value]),
      [
        ['name', 'x.service'],
        ['enable', true],
      ],
    );
    assert.deepEqual(
      get(r, 'units', 1)
        .entries.map((e) => [e.key.text, e.value.value])
        .sort(),
      [
        ['enable', true],
        ['name', 'y.service'],
      ],
    );
    assert.equal(get(r, 'k').value, 2);
  });

  it('keeps unknown tags as plain strings, lists and maps', () => {
    const r = root('a: !foo bar\nb: !!set {x: ~}\nc: !!str 0744\n');
    assert.deepEqual([get(r, 'a').kind, get(r, 'a').value], ['str', 'bar']);
    assert.equal(get(r, 'b').kind, 'map');
    assert.deepEqual([get(r, 'c').kind, get(r, 'c').value], ['str', '0744']);
  });

  it("reads the first document only, as go-yaml's Unmarshal did", () => {
    const r = root('a: 1\n---\nb: [\n');
    assert.deepEqual(
      r.entries.map((e) => e.key.text),
      ['a'],
    );
  });
});

describe('cloud-config yaml: positions', () => {
  const doc =
    '#cloud-config\nhostname: h\ncoreos:\n  units:\n    - name: a.service\n' +
    '      drop_ins:\n        - name: x\n    -\n      name: b.service\n' +
    '  update: {group: g}\n';

  it('gives keys and values their own line and column (1-based)', () => {
    const r = root(doc);
    assert.deepEqual([r.entries[0].key.line, r.entries[0].key.column], [2, 1]);
    assert.deepEqual([get(r, 'hostname').line, get(r, 'hostname').column], [2, 11]);
    const units = r.entries[1].value.entries[0];
    assert.deepEqual([units.key.line, units.key.column, units.value.line, units.value.column], [4, 3, 5, 5]);
    assert.deepEqual([get(r, 'coreos', 'update', 'group').line, get(r, 'coreos', 'update', 'group').column], [10, 19]);
  });

  it('places a list item at its dash, even when the item starts on the next line', () => {
    const r = root(doc);
    assert.deepEqual([get(r, 'coreos', 'units', 0).line, get(r, 'coreos', 'units', 0).column], [5, 5]);
    assert.deepEqual([get(r, 'coreos', 'units', 1).line, get(r, 'coreos', 'units', 1).column], [8, 5]);
    assert.deepEqual(
      [get(r, 'coreos', 'units', 0, 'drop_ins', 0).line, get(r, 'coreos', 'units', 0, 'drop_ins', 0).column],
      [7, 9],
    );
    assert.equal(get(r, 'coreos', 'units', 1, 'name').line, 9);
  });

  it("reads a root flow mapping's keys (js-yaml's listener gave `{}` a nil key)", () => {
    assert.equal(report('{}\n'), '');
    assert.equal(report('{hostname: h, bogus: 1}\n'), 'line 2: warning: unrecognized key "bogus"\n');
  });

  it(
    'keeps a flow list that is a block list item one level deep ' + "(js-yaml's listener wrapped it in another list)",
    () => {
      const r = root('a:\n  - [1, {b: c}]\n  - x\n');
      assert.deepEqual(
        get(r, 'a', 0).items.map((i) => i.kind),
        ['int', 'map'],
      );
      assert.deepEqual([get(r, 'a', 0).line, get(r, 'a', 0).column, get(r, 'a', 1).line], [2, 3, 3]);
    },
  );

  it('reports at those lines, CRLF documents included', () => {
    assert.equal(
      formatReport(validateCloudConfig(doc.replace('name: x', 'name: x\n          bogus: 1')).report),
      'line 8: warning: unrecognized key "bogus"\n',
    );
    assert.equal(
      formatReport(validateCloudConfig('#cloud-config\r\nhostname: h\r\nbogus: 1\r\n').report),
      'line 3: warning: unrecognized key "bogus"\n',
    );
  });
});

describe("cloud-config yaml: syntax errors in libyaml's words", () => {
  const cases: [string, number, string][] = [
    ['a:\n\tb: 1\n', 2, 'found character that cannot start any token'],
    ['a: 1\n\t\nb: 2\n', 2, 'found character that cannot start any token'],
    ['a:\t1\n', 1, 'found character that cannot start any token'],
    ['a: @b\n', 1, 'found character that cannot start any token'],
    ['a: 1\nb\n', 2, "could not find expected ':'"],
    ['a: b: c\n', 1, 'mapping values are not allowed in this context'],
    ['a: b\n c: d\n', 2, 'mapping values are not allowed in this context'],
    ['a:\n  - b\n c: d\n', 3, 'did not find expected key'],
    ['a: 1\n- b\n', 2, 'did not find expected key'],
    ['- a\nb: c\n', 2, "did not find expected '-' indicator"],
    ['a: [b, c\n', 2, "did not find expected ',' or ']'"],
    ['a: {b: c\n', 2, "did not find expected ',' or '}'"],
    ['a: "b\n', 2, 'found unexpected end of stream'],
    ['a: *nope\n', 1, "unknown anchor 'nope' referenced"],
  ];
  for (const [text, line, message] of cases) {
    it(`${JSON.stringify(text)}: line ${line}: ${message}`, () =>
      assert.deepEqual([errorOf(text)?.line, errorOf(text)?.message], [line, message]));
  }

  it('lets tabs be inside scalars, flow collections and comments, and after a value', () => {
    for (const s of ['a: "x\ty"\n', 'a: |\n  x\ty\n', 'a: [1,\t2]\n', '# x\ty\na: 1\n', 'a: 1\t# c\n', 'a: b\tc\n'])
      assert.equal(errorOf(s), null, JSON.stringify(s));
  });

  it('accepts a quoted scalar whose continuation lines sit left of its block, as libyaml did', () => {
    const r = root("units:\n  - content: '[Match]\n Name=eth0\n\n[Network]\n'\n    name: x\n");
    assert.equal(get(r, 'units', 0, 'content').value, '[Match] Name=eth0\n[Network] ');
    assert.deepEqual([get(r, 'units', 0).entries[1].key.line, get(r, 'units', 0).entries[1].key.column], [7, 5]);
  });

  it("refuses a key-less `: x` in a block mapping in libyaml's words (js-yaml's leaked through)", () => {
    assert.deepEqual(errorOf('a: 1\n: x\n'), { line: 2, column: 1, message: 'did not find expected key' });
    assert.equal(errorOf('? \n: x\n'), null);
  });

  it('refuses a compact mapping after a !!binary value, as libyaml did (js-yaml read it as a key)', () => {
    assert.equal(errorOf('a: !!binary aGVsbG8K: x\n')?.message, 'mapping values are not allowed in this context');
  });

  it('gives the report one error and no config', () => {
    const v = validateCloudConfig('#cloud-config\nhostname: a\nusers: [\n');
    assert.deepEqual([v.report.length, v.report[0].kind, v.config], [1, 'error', null]);
  });
});
