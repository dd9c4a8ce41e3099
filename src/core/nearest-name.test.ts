import { describe, expect, it } from 'vitest';
import { editDistance, nearestNames } from './nearest-name.js';

describe('editDistance', () => {
  it('counts insertions, deletions and substitutions one each', () => {
    expect(editDistance('maxPull', 'maxPulls')).toBe(1);
    expect(editDistance('maxPulls', 'maxPull')).toBe(1);
    expect(editDistance('imagez', 'images')).toBe(1);
    expect(editDistance('', 'db')).toBe(2);
    expect(editDistance('db', 'db')).toBe(0);
  });

  it('counts a swap of two neighbouring characters as one edit', () => {
    expect(editDistance('maxPulsl', 'maxPulls')).toBe(1);
    expect(editDistance('dbeianOnly', 'debianOnly')).toBe(1);
  });
});

describe('nearestNames', () => {
  const settings = ['db', 'seeds', 'maxPulls', 'maxAttempts', 'concurrency', 'layerConcurrency'];

  it('suggests the one name a typo is closest to', () => {
    expect(nearestNames('maxPull', settings)).toEqual(['maxPulls']);
    expect(nearestNames('concurency', settings)).toEqual(['concurrency']);
  });

  it('ignores case', () => {
    expect(nearestNames('MaxPulls', settings)).toEqual(['maxPulls']);
  });

  it('names every name tied for nearest, in the order given', () => {
    expect(nearestNames('ab', ['xb', 'ay', 'abcd'])).toEqual(['xb', 'ay']);
  });

  it('suggests nothing more than two edits away', () => {
    expect(nearestNames('maxPu', settings)).toEqual([]);
  });

  it('suggests nothing for a short word that shares too little with a name, however few the edits', () => {
    // Two edits each; but "abc" keeps one character of three alike, "abcde" three of five.
    expect(nearestNames('abc', ['axy'])).toEqual([]);
    expect(nearestNames('abcde', ['abxye'])).toEqual(['abxye']);
    expect(nearestNames('x', ['db'])).toEqual([]);
  });
});
