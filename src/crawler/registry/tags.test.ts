import { describe, expect, it } from 'vitest';
import { parseLinkNext } from './tags.js';

const base = new URL('http://127.0.0.1:5000/v2/a/tags/list?n=2');

describe('parseLinkNext', () => {
  it('resolves the relative next link distribution sends', () => {
    expect(parseLinkNext('</v2/a/tags/list?last=b&n=2>; rel="next"', base)?.href).toBe(
      'http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2',
    );
  });

  it('finds next among several relations', () => {
    expect(parseLinkNext('<http://x/prev>; rel="prev", <http://x/next>; rel=next', base)?.href).toBe(
      'http://x/next',
    );
  });

  it('ignores links that are not next', () => {
    expect(parseLinkNext('</v2/a/tags/list?last=b>; rel="prev"', base)).toBeUndefined();
  });

  it('returns nothing without a header', () => {
    expect(parseLinkNext(undefined, base)).toBeUndefined();
  });
});
