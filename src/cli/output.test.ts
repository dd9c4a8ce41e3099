import { describe, expect, it } from 'vitest';
import { jsonArrayElements, neutralizeFormula, toCsv, toJsonLines, toTable } from './output.js';

describe('CSV output', () => {
  it('neutralizes every cell a spreadsheet would evaluate as a formula', () => {
    for (const bad of ['=1+1', '+cmd', '-2+3', '@SUM(A1)', '\tx', '\rx']) {
      expect(neutralizeFormula(bad)).toBe(`'${bad}`);
    }
    expect(neutralizeFormula('sha256:abc')).toBe('sha256:abc');
  });

  it('writes RFC 4180 records with CRLF and quotes only where needed', () => {
    const csv = toCsv(
      ['a', 'b'],
      [
        { a: 'plain', b: 'has,comma' },
        { a: 'say "hi"', b: 'two\nlines' },
      ],
    );
    expect(csv).toBe('a,b\r\nplain,"has,comma"\r\n"say ""hi""","two\nlines"\r\n');
  });

  it('writes numbers as they are and neutralizes only text that looks like a formula', () => {
    const csv = toCsv(
      ['n', 'big', 'real', 'text', 'inf'],
      [{ n: -1, big: -9007199254740993n, real: -0.5, text: '-1', inf: Number.NEGATIVE_INFINITY }],
    );
    expect(csv).toBe("n,big,real,text,inf\r\n-1,-9007199254740993,-0.5,'-1,'-Infinity\r\n");
  });

  it('neutralizes a header cell, which is text', () => {
    expect(toCsv(['-1'], [{ '-1': -1 }])).toBe("'-1\r\n-1\r\n");
  });

  it('prints booleans as true/false and null as an empty cell', () => {
    expect(toCsv(['x', 'y'], [{ x: true, y: null }])).toBe('x,y\r\ntrue,\r\n');
  });
});

describe('other formats', () => {
  it('writes one JSON object per line', () => {
    expect(toJsonLines([{ a: 1 }, { a: '=x' }])).toBe('{"a":1}\n{"a":"=x"}\n');
  });

  it('shows control characters and bidirectional overrides in a table as escapes, never raw', () => {
    // A file name from a hostile layer: an OSC title change, a cursor-up-and-erase, a right-to-left override.
    const path = '/opt/\u001b]0;owned\u0007x\u001b[1A\u001b[2Kevil\u202etxt.exe\u009b\u200f\u2028';
    const table = toTable(['path'], [{ path }], 200);
    expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200f\u2028\u202a-\u202e]/);
    expect(table).toContain(
      '/opt/\\x1b]0;owned\\x07x\\x1b[1A\\x1b[2Kevil\\u{202e}txt.exe\\x9b\\u{200f}\\u{2028}',
    );
  });

  it('shows a newline, a carriage return and a tab in a table cell as escapes, so they differ from a space', () => {
    const rows = [{ path: 'a\nb' }, { path: 'a\rb' }, { path: 'a\tb' }, { path: 'a b' }];
    expect(toTable(['path'], rows)).toBe('path\n------\na\\x0ab\na\\x0db\na\\x09b\na b\n(4 rows)\n');
  });

  it('aligns a table and counts its rows', () => {
    expect(toTable(['n', 'name'], [{ n: 1, name: 'debian' }])).toBe(
      'n  name\n-  ------\n1  debian\n(1 row)\n',
    );
  });
});

describe('CSV in batches', () => {
  it('writes the same bytes as one toCsv call when records follow a header-only toCsv', async () => {
    const { csvRecords } = await import('./output.js');
    const rows = [
      { a: '=x', b: 'p,q' },
      { a: 'y', b: null },
    ];
    expect(
      toCsv(['a', 'b'], []) +
        csvRecords(['a', 'b'], rows.slice(0, 1)) +
        csvRecords(['a', 'b'], rows.slice(1)),
    ).toBe(toCsv(['a', 'b'], rows));
  });
});

describe('a JSON array in batches', () => {
  it("writes JSON.stringify(rows, null, 2)'s bytes when batches are joined by ',\\n' between '[\\n' and '\\n]'", () => {
    // Strings holding line ends, quotes, a tab and non-ASCII, a nested value: what the indenting must not touch.
    const rows = [
      { path: '/etc/a\nb', note: 'say "hi"\t', n: 1 },
      { path: '/usr/lib/ü', note: null, n: 2.5 },
      { path: '[\n  {', note: '\u2028', n: -3 },
    ];
    const batched = `[\n${jsonArrayElements(rows.slice(0, 2))},\n${jsonArrayElements(rows.slice(2))}\n]`;
    expect(batched).toBe(JSON.stringify(rows, null, 2));
  });
});
