import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lineAndColumnAt, textLines } from './text-lines.js';

describe('textLines', () => {
  it('gives the lines split gives, without the CR of a CRLF line', () => {
    expect([...textLines('a\r\nb\n\nc\r')]).toEqual(['a', 'b', '', 'c']);
    expect([...textLines('')]).toEqual(['']);
    expect([...textLines('x\n')]).toEqual(['x', '']);
    expect([...textLines('\r\r\n')]).toEqual(['\r', '']);
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '\n', '\r', ' ') }), (text) => {
        const split = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
        expect([...textLines(text)]).toEqual(split);
      }),
    );
  });
});

describe('lineAndColumnAt', () => {
  it('counts lines and columns from 1', () => {
    expect(lineAndColumnAt('ab\ncd', 0)).toEqual({ line: 1, column: 1 });
    expect(lineAndColumnAt('ab\ncd', 2)).toEqual({ line: 1, column: 3 });
    expect(lineAndColumnAt('ab\ncd', 3)).toEqual({ line: 2, column: 1 });
    expect(lineAndColumnAt('ab\r\ncd\n\nx', 8)).toEqual({ line: 4, column: 1 });
  });

  it('counts a character of two UTF-16 units as one column', () => {
    expect(lineAndColumnAt('"\u{1F600}" x', 5)).toEqual({ line: 1, column: 5 });
  });
});
