import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { textLines } from './text-lines.js';

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
