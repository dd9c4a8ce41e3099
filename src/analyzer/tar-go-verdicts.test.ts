/**
 * The crafted layers of tar-go-reader.test.ts carried through analyzeLayer and the matcher: a
 * backdoor whose name the runtime (Go's archive/tar) writes at the library path must be reported
 * as there, and a member the runtime writes elsewhere must not hide a lower layer's backdoor.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { LayerFacts } from './facts.js';
import { compileRules } from './iocs/compile.js';
import { matchImage } from './iocs/image-view.js';
import { parseIocSet } from './iocs/load.js';
import { analyzeLayer } from './layer-stream.js';
import {
  CLEAN,
  EVIL,
  file,
  HIDDEN_BACKDOOR_LAYERS,
  header,
  LIB,
  member,
  nulMember,
  pax,
  tarOf,
  WRITTEN_ELSEWHERE_LAYERS,
} from './test-fixtures/crafted-tar.js';

const set = parseIocSet(
  {
    id: 'go-tar-verdicts',
    version: '1',
    title: 'crafted tar names',
    references: ['https://example.org/go-tar-verdicts'],
    rules: [
      {
        id: 'evil-sha256',
        kind: 'file-sha256',
        sha256: createHash('sha256').update(EVIL).digest('hex'),
        paths: ['/**/liblzma.so.5*'],
        size: EVIL.length,
      },
    ],
  },
  'tar-go-verdicts.test.ts',
);
const rules = compileRules([set]);

async function analyze(tar: Buffer): Promise<LayerFacts> {
  return analyzeLayer(
    (async function* () {
      yield tar;
    })(),
    { rules },
  );
}

/** [path, inFinalFs] of every piece of evidence in the image made of `layers`, base first. */
async function evidence(...layers: Buffer[]): Promise<Array<[string, boolean]>> {
  const facts = await Promise.all(layers.map(analyze));
  const image = facts.map((f, i) => ({ digest: `sha256:layer${i}`, facts: f }));
  return matchImage(image, [set]).map((e) => [e.path, e.inFinalFs]);
}

const ABS = `/${LIB}`;
const base = tarOf(file(LIB, EVIL));

describe('a backdoor under a crafted tar name is found where the runtime writes it', () => {
  const cases: Record<string, Buffer> = {
    ...HIDDEN_BACKDOOR_LAYERS,
    't06 (x, then g)': tarOf(pax({ path: 'opt/decoy.bin' }), pax({ comment: 'c' }, 'g'), file(LIB, EVIL)),
    't12b (old-GNU prefix fallback)': tarOf(member({ name: '', format: 'gnu', at345: LIB }, EVIL)),
  };
  for (const [what, layer] of Object.entries(cases)) {
    it(`${what}: AFFECTED, at the library path`, async () => {
      expect(await evidence(layer)).toEqual([[ABS, true]]);
    });
  }
});

describe('an upper member the runtime writes elsewhere does not hide the base layer backdoor', () => {
  const cases: Record<string, Buffer> = {
    ...WRITTEN_ELSEWHERE_LAYERS,
    't10d whiteout path in a replaced x': tarOf(
      pax({ path: 'usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1' }),
      pax({ mtime: '1' }),
      file('opt/unrelated.bin', 'x'),
    ),
  };
  for (const [what, upper] of Object.entries(cases)) {
    it(`${what}: the finding survives`, async () => {
      expect(await evidence(base, upper)).toEqual([[ABS, true]]);
    });
  }

  it("r1b: a whiteout inside a NUL member named 'opt/x/' removes the library, as the runtime does", async () => {
    const upper = tarOf(
      nulMember('opt/x/', header({ name: 'usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1' })),
    );
    expect(await evidence(base, upper)).toEqual([[ABS, false]]);
  });

  it('t12c: but an old-GNU member the runtime writes over the library does replace it', async () => {
    const upper = tarOf(
      member({ name: 'liblzma.so.5.6.1', format: 'gnu', at345: 'usr/lib/x86_64-linux-gnu' }, CLEAN),
    );
    expect(await evidence(base, upper)).toEqual([[ABS, false]]);
  });
});

describe('names that are not valid UTF-8 stay distinct through the matcher', () => {
  const lib = (dir: number, base = 'liblzma.so.5.6.1') =>
    Buffer.concat([Buffer.from('opt/lib'), Buffer.of(dir), Buffer.from(`/${base}`)]);
  const at = '/opt/lib\uFFFDff/liblzma.so.5.6.1';

  it('t14: a whiteout in another directory leaves the backdoor in place', async () => {
    const upper = tarOf(header({ name: lib(0xfe, '.wh.liblzma.so.5.6.1') }));
    expect(await evidence(tarOf(file(lib(0xff), EVIL)), upper)).toEqual([[at, true]]);
  });

  it('t14b: a clean file in another directory of the same layer leaves it too', async () => {
    expect(await evidence(tarOf(file(lib(0xff), EVIL), file(lib(0xfe), CLEAN)))).toEqual([[at, true]]);
  });
});
