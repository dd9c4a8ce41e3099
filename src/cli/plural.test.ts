import { describe, expect, it } from 'vitest';
import { agreeing, counted } from './plural.js';

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

describe('agreeing', () => {
  it('gives the word for one only for exactly one', () => {
    expect([0, 1, 2].map((n) => `${counted(n, 'image')} ${agreeing(n, 'has', 'have')}`)).toEqual([
      '0 images have',
      '1 image has',
      '2 images have',
    ]);
  });
});
