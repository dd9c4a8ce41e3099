/**
 * docs/config.md is the reference of the config file: every field the schema accepts must be in it, so a
 * field added to the schema cannot go undocumented.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  configSchema,
  filtersSchema,
  httpSchema,
  limitsSchema,
  registrySettingsSchema,
  seedsSchema,
} from './schema.js';

const doc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');

const sections: Array<[string, z.ZodObject]> = [
  ['top level', configSchema],
  ['seeds', seedsSchema],
  ['filters', filtersSchema],
  ['registries', registrySettingsSchema],
  ['http', httpSchema],
  ['limits', limitsSchema],
];

describe('docs/config.md', () => {
  for (const [section, schema] of sections) {
    it(`names every field of ${section}`, () => {
      const missing = Object.keys(schema.shape).filter((field) => !doc.includes(`\`${field}\``));
      expect(missing).toEqual([]);
    });
  }
});
