import { describe, expect, it } from 'vitest';
import { appendAll } from './arrays.js';

describe('appendAll', () => {
  it('appends more items than a spread into push can pass as arguments', () => {
    const many = Array.from({ length: 300_000 }, (_, i) => i);
    // The failure appendAll avoids, on this very array.
    expect(() => [0].push(...many)).toThrow(RangeError);
    const target = [-1];
    appendAll(target, many);
    expect(target).toHaveLength(300_001);
    expect(target.at(-1)).toBe(299_999);
  });
});
