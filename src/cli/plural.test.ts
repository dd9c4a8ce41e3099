import { describe, expect, it } from 'vitest';
import { counted } from './plural.js';

describe('counted', () => {
  it('gives the singular for exactly one, the plural otherwise', () => {
    expect([0, 1, 2].map((n) => counted(n, 'failed item'))).toEqual([
      '0 failed items',
      '1 failed item',
      '2 failed items',
    ]);
    expect(counted(1, 'index', 'indexes')).toBe('1 index');
    expect(counted(3, 'index', 'indexes')).toBe('3 indexes');
  });
});
