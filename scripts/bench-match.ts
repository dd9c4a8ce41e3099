/**
 * Matcher benchmark: matchImage over a real Debian rootfs layer (every file hashed, as `--hash-all-files`
 * records it) with two small layers above, side by side in the same run with the same stack read by older
 * analyzers: "v6", directory entries unknown (LayerFacts.dirs undefined), which makes matching read a
 * stack twice where a path moved (image-view.ts, matchImage); and the baseline, symlinks unknown too, as a
 * layer an analyzer before version 6 read: the work matching did before it resolved layers through lower
 * symlinks (src/analyzer/iocs/lower-links.ts).
 *
 *   npx tsx scripts/bench-match.ts [--images 200] [--runs 5]
 *
 * Needs the layer `npm run bench:analyzer` builds into .cache/bench (run that once first). Three cases:
 * "all shared", every image on the same facts objects (tags of one image); "base shared", the base's
 * facts object shared and the layers above fresh for every image, as a crawl or rematch meets images
 * built on one base (LayerFactsCache keeps the base); "unshared", every stack resolved anew. Prints
 * milliseconds per image and the ratio to the baseline; runs alternate.
 */
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LayerFacts } from '../src/analyzer/facts.js';
import { builtinIocSets } from '../src/analyzer/iocs/builtin.js';
import { compileRules } from '../src/analyzer/iocs/compile.js';
import { type ImageLayer, matchImage } from '../src/analyzer/iocs/image-view.js';
import { analyzeLayer } from '../src/analyzer/layer-stream.js';

const { values } = parseArgs({
  options: { images: { type: 'string', default: '200' }, runs: { type: 'string', default: '5' } },
});
const images = Number(values.images);
const runs = Number(values.runs);
const layerFile = join(process.cwd(), '.cache/bench/layer.tar.gz');
if (!existsSync(layerFile)) {
  console.error(`${layerFile} is missing: run \`npm run bench:analyzer\` once to build it`);
  process.exit(2);
}

const sets = builtinIocSets();
const base = await analyzeLayer(createReadStream(layerFile), {
  rules: compileRules(sets, { hashAllFiles: true }),
});
// Two upper layers as an application image adds them: a few hundred files, some dpkg lists, no links.
const upper: LayerFacts = {
  ...base,
  files: base.files.slice(0, 200),
  md5sums: base.md5sums.slice(0, 300),
  packages: [],
  whiteouts: [],
  symlinks: [],
  dirs: ['/opt/app'],
};
const stack: ImageLayer[] = [base, upper, upper].map((facts, i) => ({ digest: `sha256:${i}`, facts }));
/** The same stack as older analyzers left it: `undefined` is what the dataset loads for "not recorded". */
const olderAnalyzer = (forget: Partial<LayerFacts>): ImageLayer[] =>
  stack.map((l) => ({ ...l, facts: { ...l.facts!, ...forget } }));
const variants = {
  resolved: stack,
  v6: olderAnalyzer({ dirs: undefined }),
  baseline: olderAnalyzer({ dirs: undefined, symlinks: undefined }),
};

/** Which layers get fresh facts objects for every image: none, all but the base, or all. */
type Sharing = 'all shared' | 'base shared' | 'unshared';

/** Milliseconds per image for `images` matches, the layers shared across images as `sharing` says. */
function timePerImage(layers: ImageLayer[], sharing: Sharing): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < images; i++) {
    const fresh = layers.map((l, j) =>
      sharing === 'all shared' || (sharing === 'base shared' && j === 0)
        ? l
        : { ...l, facts: { ...l.facts! } },
    );
    matchImage(fresh, sets);
  }
  return Number(process.hrtime.bigint() - start) / 1e6 / images;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `base layer: ${base.files.length} files, ${base.md5sums.length} md5sums lines, ${base.symlinks?.length} symlinks, ${base.dirs?.length} directories; ${images} images × ${runs} runs`,
);
for (const sharing of ['all shared', 'base shared', 'unshared'] as const) {
  const times = { resolved: [] as number[], v6: [] as number[], baseline: [] as number[] };
  for (const layers of Object.values(variants)) timePerImage(layers, sharing); // warm the JIT for each
  for (let r = 0; r < runs; r++) {
    for (const [name, layers] of Object.entries(variants)) {
      times[name as keyof typeof variants].push(timePerImage(layers, sharing));
    }
  }
  const [m, v6, b] = [median(times.resolved), median(times.v6), median(times.baseline)];
  console.log(
    `${sharing.padEnd(11)}  resolved ${m.toFixed(2)} ms/image (ratio ${(m / b).toFixed(2)})  v6 layers ${v6.toFixed(2)} ms/image (ratio ${(v6 / b).toFixed(2)})  baseline ${b.toFixed(2)} ms/image`,
  );
}
