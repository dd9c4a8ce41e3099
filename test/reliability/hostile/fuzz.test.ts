/**
 * Mutation fuzzing, bounded (numRuns and a per-run deadline), in the normal test run. It adds to the
 * generation-based property tests beside the code (src/crawler/registry/fuzz.test.ts: random bytes
 * and manifest-shaped JSON; src/analyzer/layer-stream.property.test.ts: random bytes, truncations,
 * bit flips under a known digest; src/analyzer/dpkg/status.test.ts: random text) by starting from
 * VALID inputs and breaking them a little, which reaches deeper code than random bytes do.
 * The only outcomes allowed are a result or one of our typed errors.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildImage, buildIndex, MEDIA_TYPES } from '../../../scripts/lib/image-builder.js';
import { parseDpkgStatus } from '../../../src/analyzer/dpkg/status.js';
import type { LayerFacts } from '../../../src/analyzer/facts.js';
import { builtinIocSets } from '../../../src/analyzer/iocs/builtin.js';
import { compileRules } from '../../../src/analyzer/iocs/compile.js';
import { analyzeLayer } from '../../../src/analyzer/layer-stream.js';
import { HubcrawlError } from '../../../src/core/errors.js';
import { parseManifest } from '../../../src/crawler/registry/manifests.js';
import { type RawEntry, rawTar } from './raw-tar.js';

const RUN_DEADLINE_MS = 5_000;
const rules = compileRules(builtinIocSets(), { hashAllFiles: true });

/** Byte-level damage to a valid input: overwrite, insert, delete, or cut. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(input: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === 'set') b[at] = m.byte;
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
    else b = b.subarray(0, at);
  }
  return b;
}

/** Result or typed error; anything else (TypeError, RangeError, a hang) fails the property. */
async function settle<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T | HubcrawlError> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`did not settle within ${RUN_DEADLINE_MS} ms: it hangs`));
    }, RUN_DEADLINE_MS);
  });
  try {
    return await Promise.race([fn(controller.signal), hang]);
  } catch (err) {
    if (err instanceof HubcrawlError) return err;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function* once(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

describe('parseManifest on mutated valid manifests', () => {
  it('returns a parsed manifest or throws a typed error for every mutation of an image manifest and an index', async () => {
    const image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'a', content: 'a' }] }] });
    const index = buildIndex({ images: [image], format: 'oci', withAttestation: true });
    const originals = [
      { raw: image.manifest, contentType: image.mediaType },
      { raw: index.manifest, contentType: index.mediaType },
    ];
    const contentType = fc.constantFrom(undefined, 'application/json', MEDIA_TYPES.ociManifest);
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.option(contentType),
        (which, ms, ct) => {
          const o = originals[which]!;
          const raw = mutate(o.raw, ms);
          try {
            const r = parseManifest({ raw, contentType: ct ?? o.contentType, source: 'fuzz' });
            // Whatever parses is internally consistent: its digest is of the exact bytes received.
            expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
          } catch (err) {
            if (!(err instanceof HubcrawlError)) throw err;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('analyzeLayer on mutated tar archives', () => {
  const base = rawTar([
    {
      name: 'var/lib/dpkg/status',
      body: Buffer.from('Package: liblzma5\nVersion: 5.6.1-1\nStatus: install ok installed\n\n'),
    },
    { name: 'usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1', body: Buffer.alloc(700, 1) },
    { name: 'x', pax: { path: `opt/${'p'.repeat(300)}/liblzma.so.5` }, body: Buffer.from('pax') },
    { name: 'etc/.wh.gone' },
    { name: 'etc/os-release', body: Buffer.from('ID=debian\n') },
  ]);

  it('resolves with facts or rejects with a typed error, never hangs, for mutated headers and bodies', async () => {
    // Mutations aimed at the first 3 KiB, where every header of this archive lives.
    const headerMutation = mutation.map((m) => ({ ...m, at: m.at % 3072 }));
    await fc.assert(
      fc.asyncProperty(fc.array(headerMutation, { minLength: 1, maxLength: 6 }), async (ms) => {
        const r = await settle((signal) => analyzeLayer(once(mutate(base, ms)), { rules, signal }));
        expect(r instanceof HubcrawlError || Array.isArray((r as LayerFacts).files)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('records only normalized absolute paths for archives of arbitrary hostile names', async () => {
    const segment = fc.oneof(
      fc.constantFrom('..', '.', '', 'usr', 'lib', 'liblzma.so.5', '.wh.x', '.wh..wh..opq', 'a\0b'),
      fc.string({ maxLength: 12 }),
    );
    const name = fc.array(segment, { minLength: 1, maxLength: 8 }).map((parts) => parts.join('/'));
    const entry: fc.Arbitrary<RawEntry> = fc
      .record({ name, long: fc.boolean() })
      .map(({ name: n, long }) =>
        long || Buffer.byteLength(n) > 100
          ? { name: 'x', pax: { path: `${n}/liblzma.so.5` } }
          : { name: `${n}/liblzma.so.5`, body: Buffer.from('z') },
      );
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 12 }), async (entries) => {
        const r = await settle((signal) => analyzeLayer(once(rawTar(entries)), { rules, signal }));
        if (r instanceof HubcrawlError) return;
        for (const p of [...r.files.map((f) => f.path), ...r.whiteouts.map((w) => w.path)]) {
          expect(p.startsWith('/')).toBe(true);
          expect(p).not.toMatch(/\0|\/\.\.?(\/|$)|\/\//);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseDpkgStatus on mutated real status files', () => {
  const real = [
    'Package: liblzma5',
    'Status: install ok installed',
    'Priority: required',
    'Architecture: amd64',
    'Source: xz-utils (5.6.1-1)',
    'Version: 5.6.1-1',
    'Description: XZ-format compression library',
    ' continuation line',
    ' .',
    '',
    'Package: base-files',
    'Status: deinstall ok config-files',
    'Version: 12.4+deb12u5',
    '',
  ].join('\n');

  it('never throws and returns only packages with a non-empty name and version', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 8 }), (ms) => {
        const text = mutate(Buffer.from(real), ms).toString('utf8');
        for (const p of parseDpkgStatus(text, '/var/lib/dpkg/status')) {
          expect(p.name.trim()).not.toBe('');
          expect(p.version.trim()).not.toBe('');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
