import { describe, expect, it } from 'vitest';
import { CorruptInputError } from '../../core/errors.js';
import { normalizeCreated, parseImageConfig } from './image-config.js';

const config = (fields: Record<string, unknown>) => Buffer.from(JSON.stringify(fields));

describe('normalizeCreated', () => {
  it.each([
    ['2024-03-01T00:00:00Z', '2024-03-01T00:00:00.000Z'],
    ['2024-02-27T19:31:25.123456789+01:00', '2024-02-27T18:31:25.123Z'],
    ['2024-02-27T19:31:25.9999999Z', '2024-02-27T19:31:25.999Z'],
    ['2024-02-29T23:30:00-01:00', '2024-03-01T00:30:00.000Z'],
    ['2024-03-01T12:00:00.5-00:00', '2024-03-01T12:00:00.500Z'],
    ['1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
  ])('gives %s as %s: UTC, milliseconds, digits past them cut', (written, stored) => {
    expect(normalizeCreated(written)).toBe(stored);
  });

  it('orders as text as the instants do, which the dates as written do not', () => {
    const written = ['2024-03-01T12:00:00.5Z', '2024-03-01T12:00:00Z', '2024-03-01T12:30:00+01:00'];
    const stored = written.map(normalizeCreated) as string[];
    expect([...stored].sort()).toEqual([stored[2], stored[1], stored[0]]);
    expect([...written].sort()).not.toEqual([written[2], written[1], written[0]]);
  });

  it.each([
    ['absent', undefined],
    ['null', null],
    ['a number', 1709251200],
    ['an object', { $date: '2024-03-01T00:00:00Z' }],
    ['empty', ''],
    ['words', 'last Tuesday'],
    ['a date without a time', '2024-03-01'],
    ['a time without a zone', '2024-03-01T12:00:00'],
    ['a time without seconds', '2024-03-01T12:00Z'],
    ['a space for T', '2024-03-01 12:00:00Z'],
    ['a day the month lacks', '2024-02-30T00:00:00Z'],
    ['29 February of a common year', '2023-02-29T00:00:00Z'],
    ['hour 24', '2024-03-01T24:00:00Z'],
    ['an offset without a colon', '2024-03-01T12:00:00+0100'],
    ['an offset of 24 hours', '2024-03-01T12:00:00+24:00'],
    ['padding', ' 2024-03-01T00:00:00Z'],
    ['a year an offset carries below 0000', '0000-01-01T00:30:00+01:00'],
    ['a year an offset carries past 9999', '9999-12-31T23:30:00-01:00'],
  ])('gives null for %s', (_, value) => {
    expect(normalizeCreated(value)).toBeNull();
  });
});

describe('parseImageConfig', () => {
  it('reads the platform and the normalized date', () => {
    const c = config({ architecture: 'arm', os: 'linux', variant: 'v7', created: '2024-03-01T00:00:00Z' });
    expect(parseImageConfig(c, 'config')).toStrictEqual({
      platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
      created: '2024-03-01T00:00:00.000Z',
    });
  });

  it('reads the platform of a config whose date is invalid, the date as null', () => {
    const c = config({ architecture: 'amd64', os: 'linux', created: 20240301 });
    expect(parseImageConfig(c, 'config')).toStrictEqual({
      platform: { os: 'linux', architecture: 'amd64' },
      created: null,
    });
  });

  it('fails only bytes that are not JSON, naming the source', () => {
    expect(() => parseImageConfig(Buffer.from('{'), 'image config sha256:x of a/b')).toThrow(
      new CorruptInputError('image config sha256:x of a/b is not JSON'),
    );
    expect(parseImageConfig(Buffer.from('[]'), 'config')).toStrictEqual({
      platform: { os: 'unknown', architecture: 'unknown' },
      created: null,
    });
  });
});
