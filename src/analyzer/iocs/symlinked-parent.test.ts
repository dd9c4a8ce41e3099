/**
 * A layer that writes a file through a symlink it made itself (`lib -> usr/lib`, then
 * `lib/x86_64-linux-gnu/liblzma.so.5.6.1`): unpackers write it at the link's target, so that is where
 * the evidence is and what an upper layer must remove (layer-symlinks.ts). Checked against umoci on real
 * images in test/integration/crawl/final-fs-oracle.test.ts; here, the same cases on facts alone.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { LayerFacts } from '../facts.js';
import { analyzeLayer } from '../layer-stream.js';
import { rawHeader, rawMember } from '../test-fixtures/layers.js';
import { compileRules } from './compile.js';
import { matchImage } from './image-view.js';
import { parseIocSet } from './load.js';

const PAYLOAD = Buffer.from('pretend backdoor payload\n');
const REAL = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';

const set = parseIocSet(
  {
    id: 'symlinked-parent-test',
    version: '1',
    title: 'symlinked-parent test',
    references: ['https://example.org/symlinked-parent'],
    rules: [
      {
        id: 'payload-sha256',
        kind: 'file-sha256',
        sha256: createHash('sha256').update(PAYLOAD).digest('hex'),
        paths: ['/**/liblzma.so.5*'],
      },
    ],
  },
  'symlinked-parent.test.ts',
);
const rules = compileRules([set]);

async function analyze(...members: Buffer[]): Promise<LayerFacts> {
  const tar = Buffer.concat([...members, Buffer.alloc(1024)]);
  return analyzeLayer(
    (async function* () {
      yield tar;
    })(),
    { rules },
  );
}

const symlink = (name: string, linkname: string) => rawHeader({ name, size: 0, typeflag: '2', linkname });
const hardlink = (name: string, linkname: string) => rawHeader({ name, size: 0, typeflag: '1', linkname });
const file = (name: string, content: Buffer | string) =>
  rawMember(rawHeader({ name, size: Buffer.byteLength(content) }), content);
const whiteout = (name: string) => file(name, '');

/** The lowest layer, which writes the payload through its own `lib -> usr/lib`. */
const throughOwnLink = () =>
  analyze(symlink('lib', 'usr/lib'), file('lib/x86_64-linux-gnu/liblzma.so.5.6.1', PAYLOAD));

/** [path, layer, in final fs] of each piece of evidence. */
async function verdicts(...layers: LayerFacts[]): Promise<Array<[string, number, boolean]>> {
  return matchImage(
    layers.map((facts, i) => ({ digest: `sha256:${i}`, facts })),
    [set],
  ).map((e) => [e.path ?? '', e.layerIndex, e.inFinalFs]);
}

describe('a file written through a symlink of its own layer', () => {
  it('is recorded where it lands', async () => {
    expect((await throughOwnLink()).files.map((f) => f.path)).toEqual([REAL]);
  });

  it('survives a whiteout of the link in an upper layer', async () => {
    const upper = await analyze(whiteout('.wh.lib'));
    expect(await verdicts(await throughOwnLink(), upper)).toEqual([[REAL, 0, true]]);
  });

  it('is removed by an upper layer’s file or whiteout at the path it landed at', async () => {
    const clean = await analyze(file(REAL.slice(1), 'clean'));
    const removed = await analyze(whiteout('usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1'));
    expect(await verdicts(await throughOwnLink(), clean)).toEqual([[REAL, 0, false]]);
    expect(await verdicts(await throughOwnLink(), removed)).toEqual([[REAL, 0, false]]);
  });

  it('is found by a hardlink that names it through the link', async () => {
    const lower = await analyze(
      symlink('lib', 'usr/lib'),
      file(REAL.slice(1), PAYLOAD),
      hardlink('usr/lib/x86_64-linux-gnu/liblzma.so.5', 'lib/x86_64-linux-gnu/liblzma.so.5.6.1'),
    );
    const upper = await analyze(whiteout('usr/lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1'));
    expect(await verdicts(lower, upper)).toEqual([
      [REAL, 0, false],
      ['/usr/lib/x86_64-linux-gnu/liblzma.so.5', 0, true],
    ]);
  });

  it('does not follow a symlink that a hardlink names itself: the link is to the symlink', async () => {
    const facts = await analyze(
      file(REAL.slice(1), PAYLOAD),
      symlink('usr/lib/x86_64-linux-gnu/liblzma.so.5', 'liblzma.so.5.6.1'),
      hardlink('opt/x/liblzma.so.5', 'usr/lib/x86_64-linux-gnu/liblzma.so.5'),
    );
    expect(await verdicts(facts)).toEqual([[REAL, 0, true]]);
  });

  it('whites out through the link too: an upper layer’s `lib/…/.wh.x` removes the real path', async () => {
    const lower = await analyze(file(REAL.slice(1), PAYLOAD));
    const upper = await analyze(
      symlink('lib', 'usr/lib'),
      whiteout('lib/x86_64-linux-gnu/.wh.liblzma.so.5.6.1'),
    );
    expect(await verdicts(lower, upper)).toEqual([[REAL, 0, false]]);
  });
});
