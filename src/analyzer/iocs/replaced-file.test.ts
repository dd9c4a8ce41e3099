/**
 * A finding in a lower layer whose path an upper layer replaces with a file of another size (or a
 * symlink) must not be reported as surviving: the size prefilter keeps the replacement from being a
 * candidate, so the pass records its presence alone (isWatchedPath) and the image view sees it.
 */
import { describe, expect, it } from 'vitest';
import type { LayerFacts } from '../facts.js';
import { analyzeLayer } from '../layer-stream.js';
import { rawHeader, rawMember } from '../test-fixtures/layers.js';
import { compileRules } from './compile.js';
import { matchImage } from './image-view.js';
import { parseIocSet } from './load.js';

const PAYLOAD = Buffer.from('pretend backdoor payload\n');
const LIB = 'usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';

const set = parseIocSet(
  {
    id: 'replaced-test',
    version: '1',
    title: 'replaced-file test',
    references: ['https://example.org/replaced'],
    rules: [
      {
        id: 'payload-sha256',
        kind: 'file-sha256',
        sha256: '5f5d4da2e2cd1f1a8c1e0ec7a46df1a8e1b4a9e0ef41d5ea6c5e1c1b8b1f5d0b',
        paths: ['/usr/lib/**/liblzma.so.5*'],
        size: PAYLOAD.length,
      },
    ],
  },
  'replaced-file.test.ts',
);

function tarOf(...members: Buffer[]): Buffer {
  return Buffer.concat([...members, Buffer.alloc(1024)]);
}

async function analyze(tar: Buffer, rules = compileRules([set])): Promise<LayerFacts> {
  return analyzeLayer(
    (async function* () {
      yield tar;
    })(),
    { rules },
  );
}

describe('a lower-layer file replaced in an upper layer', () => {
  it('is recorded without hashes when the replacement is not a candidate by size', async () => {
    const upper = await analyze(tarOf(rawMember(rawHeader({ name: LIB, size: 3 }), 'new')));
    expect(upper.files).toEqual([{ path: `/${LIB}`, size: 3, mode: 0o644, sha256: null, md5: null }]);
  });

  it('is recorded when the replacement is a symlink', async () => {
    const upper = await analyze(
      tarOf(rawHeader({ name: LIB, size: 0, typeflag: '2', linkname: 'liblzma.so.5.4.5' })),
    );
    expect(upper.files.map((f) => [f.path, f.sha256])).toEqual([[`/${LIB}`, null]]);
  });

  it('makes the lower finding not survive in the final filesystem', async () => {
    const rules = compileRules([set]);
    const lower = await analyze(
      tarOf(rawMember(rawHeader({ name: LIB, size: PAYLOAD.length }), PAYLOAD)),
      rules,
    );
    const sha = lower.files[0]!.sha256!;
    // The rule names the payload's real hash so the lower layer matches.
    const matching = { ...set, rules: [{ ...set.rules[0]!, sha256: sha }] } as typeof set;
    const upper = await analyze(tarOf(rawMember(rawHeader({ name: LIB, size: 3 }), 'new')), rules);
    const evidence = matchImage(
      [
        { digest: 'sha256:lower', facts: lower },
        { digest: 'sha256:upper', facts: upper },
      ],
      [matching],
    );
    expect(evidence.map((e) => [e.ruleId, e.layerDigest, e.inFinalFs])).toEqual([
      ['payload-sha256', 'sha256:lower', false],
    ]);
    // Without the upper layer, the same evidence survives: the test can tell the two apart.
    expect(matchImage([{ digest: 'sha256:lower', facts: lower }], [matching])[0]!.inFinalFs).toBe(true);
  });

  it('is recorded when the replacement is a hardlink to data stored under another name', async () => {
    // GNU tar keeps the bytes under the name it archives first; one pass cannot go back for them.
    const upper = await analyze(
      tarOf(
        rawMember(rawHeader({ name: 'opt/blob', size: PAYLOAD.length }), PAYLOAD),
        rawHeader({ name: LIB, size: 0, typeflag: '1', linkname: 'opt/blob' }),
      ),
    );
    expect(upper.files).toStrictEqual([
      { path: `/${LIB}`, size: 0, mode: 0o644, sha256: null, md5: null, linkTarget: '/opt/blob' },
    ]);
  });

  for (const hashAllFiles of [false, true]) {
    it(`is not taken to replace it when the replacement is a hardlink to a lower layer’s copy (hashAllFiles ${hashAllFiles})`, async () => {
      // Unpacking links the path to what the lower layers left at the target: the backdoor may stay.
      const rules = compileRules([set], { hashAllFiles });
      const lower = await analyze(
        tarOf(
          rawMember(rawHeader({ name: LIB, size: PAYLOAD.length }), PAYLOAD),
          rawMember(rawHeader({ name: 'opt/backup', size: PAYLOAD.length }), PAYLOAD),
        ),
        rules,
      );
      const matching = {
        ...set,
        rules: [{ ...set.rules[0]!, sha256: lower.files[0]!.sha256! }],
      } as typeof set;
      const linked = (...whiteouts: Buffer[]) =>
        analyze(
          tarOf(rawHeader({ name: LIB, size: 0, typeflag: '1', linkname: 'opt/backup' }), ...whiteouts),
          rules,
        );
      const verdicts = async (...upper: LayerFacts[]) =>
        matchImage(
          [lower, ...upper].map((facts, i) => ({ digest: `sha256:${i}`, facts })),
          [matching],
        ).map((e) => [e.path, e.layerDigest, e.inFinalFs]);
      expect(await verdicts(await linked())).toContainEqual([`/${LIB}`, 'sha256:0', true]);
      // The target whited out in the same layer, after the link: the link keeps the bytes.
      expect(await verdicts(await linked(rawHeader({ name: 'opt/.wh.backup', size: 0 })))).toContainEqual([
        `/${LIB}`,
        'sha256:0',
        true,
      ]);
    });
  }

  it('is not recorded for paths no rule names', async () => {
    const facts = await analyze(tarOf(rawMember(rawHeader({ name: 'etc/hostname', size: 3 }), 'box')));
    expect(facts.files).toEqual([]);
  });
});
