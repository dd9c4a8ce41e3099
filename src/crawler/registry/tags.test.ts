import { describe, expect, it } from 'vitest';
import { linkNext } from './paging.js';

const base = new URL('http://127.0.0.1:5000/v2/a/tags/list?n=2');

/** The next URL, or the invalid target, as a string. */
function next(link: string | undefined): string | undefined {
  const n = linkNext(link, base);
  return n && ('url' in n ? n.url.href : `invalid: ${n.invalid}`);
}

describe('linkNext', () => {
  it('resolves the relative next link distribution sends', () => {
    expect(next('</v2/a/tags/list?last=b&n=2>; rel="next"')).toBe(
      'http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2',
    );
  });

  it('finds next among several relations', () => {
    expect(next('<http://x/prev>; rel="prev", <http://x/next>; rel=next')).toBe('http://x/next');
  });

  it('ignores links that are not next', () => {
    expect(next('</v2/a/tags/list?last=b>; rel="prev"')).toBeUndefined();
  });

  it('takes next only as a whole relation type, in any case and among others, never as the start of one', () => {
    expect(next('</v2/a/tags/list?last=z>; rel="next-archive"')).toBeUndefined();
    expect(next('</v2/a/tags/list?last=z>; rel=nextpage')).toBeUndefined();
    expect(next('</v2/a/tags/list?last=b>; rel="prev NEXT"')).toBe(
      'http://127.0.0.1:5000/v2/a/tags/list?last=b',
    );
  });

  it('returns nothing without a header', () => {
    expect(next(undefined)).toBeUndefined();
  });

  it('hands back a next target that is not a URL, so the walk can report it', () => {
    expect(next('<http://[nope>; rel="next"')).toBe('invalid: http://[nope');
  });
});
