/** Property tests: hostile input only ever produces our typed errors, and normalization is stable. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, HubcrawlError } from '../../core/errors.js';
import { parseWwwAuthenticate } from './auth.js';
import { parseManifest } from './manifests.js';
import { DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { formatReference, parseReference } from './reference.js';

const contentTypes = fc.constantFrom(
  undefined,
  'application/json',
  OCI_MANIFEST,
  OCI_INDEX,
  DOCKER_MANIFEST_V2,
  DOCKER_MANIFEST_LIST,
  'text/html',
);

function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof HubcrawlError)) throw err;
  }
}

describe('parseManifest under arbitrary input', () => {
  it('throws only typed errors for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), contentTypes, (bytes, ct) => {
        onlyTyped(() => parseManifest({ raw: Buffer.from(bytes), contentType: ct, source: 'fuzz' }));
      }),
      { numRuns: 500 },
    );
  });

  it('throws only typed errors for arbitrary JSON shaped like manifests', () => {
    const descriptor = fc.record(
      {
        mediaType: fc.oneof(fc.string(), fc.integer()),
        digest: fc.oneof(fc.string(), fc.constant(`sha256:${'a'.repeat(64)}`)),
        size: fc.oneof(fc.integer(), fc.double(), fc.string()),
        platform: fc.anything(),
        annotations: fc.anything(),
      },
      { requiredKeys: [] },
    );
    const manifest = fc.record(
      {
        schemaVersion: fc.oneof(fc.constant(2), fc.constant(1), fc.anything()),
        mediaType: fc.oneof(fc.constantFrom(OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_V2), fc.string()),
        config: fc.oneof(descriptor, fc.anything()),
        layers: fc.oneof(fc.array(descriptor, { maxLength: 4 }), fc.anything()),
        manifests: fc.oneof(fc.array(descriptor, { maxLength: 4 }), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(manifest, contentTypes, (m, ct) => {
        onlyTyped(() =>
          parseManifest({ raw: Buffer.from(JSON.stringify(m)), contentType: ct, source: 'fuzz' }),
        );
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseReference under arbitrary input', () => {
  it('throws only ConfigError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        try {
          parseReference(s);
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('is idempotent: a formatted reference parses back to itself', () => {
    const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)?$/);
    const ref = fc
      .tuple(
        fc.constantFrom('', 'docker.io/', 'localhost:5000/', 'ghcr.io/', '127.0.0.1:5000/'),
        fc.array(component, { minLength: 1, maxLength: 3 }),
        fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
      )
      .map(([reg, parts, tag]) => `${reg}${parts.join('/')}${tag ? `:${tag}` : ''}`);
    fc.assert(
      fc.property(ref, (s) => {
        const once = formatReference(parseReference(s));
        expect(formatReference(parseReference(once))).toBe(once);
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseWwwAuthenticate under arbitrary input', () => {
  it('never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        parseWwwAuthenticate(s);
      }),
      { numRuns: 1000 },
    );
  });
});
