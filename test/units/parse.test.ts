// parseUnitText against coreos/go-systemd's deserializer tests (corpus), following systemd where
// go-systemd differs, plus the syntax rules of systemd.syntax(7) checked against systemd 252.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseUnitText } from '../../units/parse.js';
import { CORPUS } from './corpus-path.js';

type Triple = [section: string, key: string, value: string];

/** The expected options of a go-systemd case, decoded from SOURCES.tsv ("[Unit] Key='value'; ..."). */
function expectedFromNotes(notes: string): Triple[] | null {
  const m = /DeserializeOptions -> (.*?)\. NOTE go-systemd/s.exec(notes);
  if (!m) return null;
  if (m[1] === 'no options') return [];
  const goString = (s: string) => s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  return [...m[1].matchAll(/\[([^\]]*)\] (.+?)='((?:[^'\\]|\\.)*)'/g)].map(([, s, k, v]): Triple => [
    s,
    k,
    goString(v),
  ]);
}

/** Cases where go-systemd and systemd disagree: what systemd 252 gives (checked with systemd-analyze verify). */
const SYSTEMD_DIFFERS: Record<string, { expect: Triple[]; why: string }> = {
  'TestDeserialize-04.txt': {
    // "wrapped \" + "    words here": the backslash becomes a space and the next line is appended as written.
    expect: [['Unit', 'Description', 'Unnecessarily wrapped      words here']],
    why: 'go-systemd keeps the backslash-newline; systemd joins the lines',
  },
  'TestDeserialize-06.txt': {
    // The comment lines inside both continuations are dropped; the first one ends at the empty line.
    expect: [
      ['Unit', 'Description', 'Bar'],
      ['Unit', 'Description', 'Bar Baz'],
    ],
    why: 'go-systemd keeps comment lines inside continuations; systemd skips them',
  },
  'TestDeserialize-12.txt': {
    expect: [['Unit', 'Description', 'Bar']],
    why: 'a continuation at end of file: systemd parses what it has (the backslash became a space, then stripped)',
  },
  'TestDeserialize-16.txt': {
    expect: [['Unit', 'Description', 'words here']],
    why: 'the continued whitespace-only line joins and is stripped',
  },
};

function goSystemdCases(): { file: string; expect: string; notes: string }[] {
  return readFileSync(`${CORPUS}SOURCES.tsv`, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.startsWith('go-systemd-'))
    .map((l) => l.split('\t'))
    .map((c) => ({ file: c[0], expect: c[5], notes: c[6] }));
}

describe('units/parse: go-systemd deserializer cases', () => {
  const cases = goSystemdCases();
  it('finds all 27 cases in the corpus', () => assert.equal(cases.length, 27));
  for (const c of cases) {
    const base = c.file.split('/')[1];
    it(`${base} (${c.expect})`, () => {
      const text = readFileSync(CORPUS + c.file, 'utf8');
      const { assignments, diagnostics } = parseUnitText(text, c.file);
      const got = assignments.map((a): Triple => [a.section, a.key, a.value]);
      if (c.expect === 'expected-invalid') {
        // systemd: a bad section header makes the file fail (error); a line without '=' is a warning.
        assert.ok(diagnostics.length > 0, 'a diagnostic for the malformed line');
        assert.equal(diagnostics[0].line, 2 - (base.endsWith('00.txt') || base.endsWith('01.txt') ? 1 : 0));
        return;
      }
      if (base.startsWith('TestDeserializeSections-')) {
        // go-systemd groups these into sections; the flat list must keep order and repeated sections.
        const flat = text.split('\n').filter((l) => l.includes('='));
        assert.deepEqual(
          got.map(([, k, v]) => `${k}=${v}`),
          flat,
        );
        assert.ok(got.every(([s]) => s === (base.endsWith('00.txt') ? 'Unit' : 'Route')));
        return;
      }
      const differs = SYSTEMD_DIFFERS[base];
      assert.deepEqual(got, differs ? differs.expect : expectedFromNotes(c.notes), differs?.why);
    });
  }
  it('warns about assignments outside a section (TestDeserialize-07, -08)', () => {
    const d = parseUnitText(
      readFileSync(`${CORPUS}go-systemd-deserialize-tests/TestDeserialize-07.txt`, 'utf8'),
      'x',
    ).diagnostics;
    assert.deepEqual(d, [
      { file: 'x', line: 1, severity: 'warning', message: 'Assignment outside of section. Ignoring.' },
    ]);
  });
  it('makes a bad section header an error, as systemd refuses the file (Fail-00, -01)', () => {
    for (const f of ['TestDeserializeFail-00.txt', 'TestDeserializeFail-01.txt']) {
      const r = parseUnitText(readFileSync(`${CORPUS}go-systemd-deserialize-tests/${f}`, 'utf8'), f);
      assert.equal(r.diagnostics[0].severity, 'error');
      assert.match(r.diagnostics[0].message, /^Invalid section header '\[Unit/);
      assert.deepEqual(r.assignments, [], 'nothing after the bad header is used');
    }
  });
});

describe('units/parse: syntax', () => {
  it('joins continuations with the backslash as one space and points at the first line', () => {
    const r = parseUnitText(
      '[Service]\nExecStart=/bin/echo a \\\n  b\\\n# dropped comment \\\n;another\n  c\nNice=1\n',
      'f',
    );
    assert.deepEqual(
      r.assignments.map((a) => [a.key, a.value, a.line]),
      [
        ['ExecStart', '/bin/echo a    b   c', 2],
        ['Nice', '1', 7],
      ],
    );
  });
  it('keeps an even run of backslashes as text, not a continuation', () => {
    const r = parseUnitText('[Service]\nTimeoutSec=x\\\\\nNice=1\n', 'f');
    assert.deepEqual(
      r.assignments.map((a) => a.value),
      ['x\\\\', '1'],
    );
  });
  it('keeps empty values, trims around "=", and # only starts a comment at line start', () => {
    const r = parseUnitText('[Unit]\n  After =  \n Description = a # not a comment \n\t# comment\n', 'f');
    assert.deepEqual(
      r.assignments.map((a) => [a.key, a.value]),
      [
        ['After', ''],
        ['Description', 'a # not a comment'],
      ],
    );
  });
  it('accepts CRLF line ends and a byte order mark', () => {
    const r = parseUnitText('\uFEFF[Unit]\r\nDescription=x\r\n', 'f');
    assert.deepEqual(
      r.assignments.map((a) => [a.section, a.value, a.line]),
      [['Unit', 'x', 2]],
    );
  });
  it("reports a line without '=' with its number and goes on", () => {
    const r = parseUnitText('[Unit]\nDescription=a\nbogus line\nAfter=b.service\n', 'u.service');
    assert.deepEqual(r.diagnostics, [
      { file: 'u.service', line: 3, severity: 'warning', message: "Missing '=', ignoring line." },
    ]);
    assert.equal(r.assignments.length, 2);
  });
  it('refuses .include, like systemd 252', () => {
    const r = parseUnitText('[Unit]\n.include /x.service\n', 'f');
    assert.equal(r.diagnostics[0].severity, 'error');
  });
});
