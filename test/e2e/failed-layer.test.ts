/**
 * An image whose upper layer fails analysis must still be reported for what its other layers hold: the
 * XZ-backdoored base under a corrupt application layer is the case that matters. The real registry
 * serves the images; the fault proxy in front of it corrupts one shared layer's bytes in transit, so the
 * crawl refuses that layer (its digest no longer matches) and every image using it has a failed layer.
 * The built CLI is run as a user would: `scan`, then `report`, `query` and `stats` on its dataset.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { type FaultProxy, startFaultProxy } from '../../scripts/lib/fault-proxy.js';
import { type BuiltBlob, buildImage, buildLayer } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { buildCliOnce, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';
import { parseCsv } from './helpers/csv.js';

let registry: RunningRegistry;
let proxy: FaultProxy;
let dir: string;
let config: string;
let db: string;
let flaky: BuiltBlob;

/** Each repository's image, base first; `flaky` is the layer the proxy corrupts. */
const IMAGES = {
  // The backdoored base under the failed layer: the evidence may or may not survive it.
  'study/xz-below': 'sid base (liblzma5 5.6.1-1), flaky',
  // The failed layer is below: the evidence above it survives whatever it held.
  'study/xz-above': 'flaky, sid base',
  // An analyzed layer above rewrites the dpkg database with the fixed version: removed, failed layer or not.
  'study/xz-fixed': 'sid base, flaky, fixed dpkg database',
  // A clean base: no evidence from the analyzed layers, so not known clean either.
  'study/clean': 'bookworm base, flaky',
} as const;
type Repo = keyof typeof IMAGES;
const refs = () => Object.keys(IMAGES).map((r) => `${registry.host}/${r}:1`);

beforeAll(async () => {
  dir = tempDir('failed-layer');
  const setup = async () => {
    registry = await startRegistry({ auth: 'none', installIfMissing: true });
    proxy = await startFaultProxy(registry.url);
    const sid = await buildLayer(debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }));
    const fixed = await buildLayer(
      debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1+really5.4.5-1' }),
    );
    const bookworm = await buildLayer(debianBaseEntries({ codename: 'bookworm' }));
    flaky = await buildLayer([{ type: 'file', path: 'opt/app/data.bin', content: randomBytes(64 * 1024) }]);
    const layers: Record<Repo, BuiltBlob[]> = {
      'study/xz-below': [sid, flaky],
      'study/xz-above': [flaky, sid],
      'study/xz-fixed': [sid, flaky, fixed],
      'study/clean': [bookworm, flaky],
    };
    for (const [repo, stack] of Object.entries(layers)) {
      await pushImage(registry, repo, '1', await buildImage({ layers: stack }));
    }
  };
  await settle(setup(), buildCliOnce());
  config = join(dir, 'config.yml');
  writeFileSync(config, `registries:\n  "${registry.host}":\n    endpoint: ${proxy.url}\n`);
  db = join(dir, 'study.sqlite');
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  removeTempDirs();
});

const scan = () => runCli(['scan', ...refs(), '--config', config, '--db', db, '--quiet']);

/** The scan table's verdict column per repository. */
function verdicts(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const repo of Object.keys(IMAGES)) {
    const line = stdout.split('\n').find((l) => l.startsWith(`${registry.host}/${repo}:1 `));
    const m = line?.match(
      / (AFFECTED|possibly AFFECTED|lower layer only, incomplete|lower layer only|incomplete|clean)(?: +\S+)?$/,
    );
    out[repo] = m?.[1] ?? `no verdict in: ${line}`;
  }
  return out;
}

/** The report's in_final_fs values of the dpkg-version evidence, per repository. */
async function dpkgSurvival(
  args: string[] = [],
): Promise<{ byRepo: Record<string, string[]>; stderr: string }> {
  const r = await runCli(['report', '--db', db, ...args]);
  expect(r.code).toBe(0);
  const [header, ...rows] = parseCsv(r.stdout).records;
  const col = (name: string) => header!.indexOf(name);
  const byRepo: Record<string, string[]> = {};
  for (const row of rows) {
    if (row[col('evidence_kind')] !== 'dpkg-version') continue;
    const repo = row[col('repository')]!;
    byRepo[repo] = [...new Set([...(byRepo[repo] ?? []), row[col('in_final_fs')]!])].sort();
  }
  return { byRepo, stderr: r.stderr };
}

describe('a layer that fails analysis', () => {
  it('leaves the evidence of the other layers reported, with survival unknown below it', async () => {
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${flaky.digest}$`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'corrupt-body', atByte: 4096 },
    });
    const r = await scan();
    proxy.clearRules();
    expect(r.code).toBe(1); // completed with failures: the flaky layer
    expect(verdicts(r.stdout)).toEqual({
      'study/xz-below': 'possibly AFFECTED',
      'study/xz-above': 'AFFECTED',
      // The failed layer may hold evidence of its own.
      'study/xz-fixed': 'lower layer only, incomplete',
      'study/clean': 'incomplete',
    });

    const { byRepo, stderr } = await dpkgSurvival();
    expect(byRepo).toEqual({
      'study/xz-below': ['unknown'],
      'study/xz-above': ['true'],
      'study/xz-fixed': ['false'],
    });
    expect(stderr).toContain('4 images have a layer that failed analysis');
    expect(stderr).toContain(
      "with in_final_fs 'unknown' below the failed layer. Without a row in this report, though not",
    );
    expect(stderr).toMatch(/Without a row in this report, though not known clean: 1\./);
  });

  it('keeps the unknown rows in --final-only and drops the removed ones', async () => {
    const { byRepo, stderr } = await dpkgSurvival(['--final-only']);
    expect(byRepo).toEqual({ 'study/xz-below': ['unknown'], 'study/xz-above': ['true'] });
    // study/xz-fixed has rows, all removed ones, so this report leaves it out too.
    expect(stderr).toMatch(/Without a row in this report, though not known clean: 2\./);
  });

  it('says NULL in affected_images and counts the image apart in stats', async () => {
    const q = await runCli([
      'query',
      '--db',
      db,
      '--format',
      'json',
      `SELECT repository, max(in_final_fs) AS fin, count(*) - count(in_final_fs) AS unknown
         FROM affected_images WHERE ioc_set = 'xz-cve-2024-3094' GROUP BY repository ORDER BY repository`,
    ]);
    expect(q.code).toBe(0);
    expect(JSON.parse(q.stdout)).toEqual([
      { repository: 'study/xz-above', fin: 1, unknown: 0 },
      { repository: 'study/xz-below', fin: null, unknown: expect.any(Number) },
      { repository: 'study/xz-fixed', fin: 0, unknown: 0 },
    ]);
    const s = await runCli(['stats', '--db', db, '--json']);
    const holds = JSON.parse(s.stdout).holds;
    expect(holds).toMatchObject({
      layersFailed: 1,
      affectedImagesFinalFs: 1,
      affectedImagesFinalFsUnknown: 1,
    });
    // Per set, the same three: xz-fixed's evidence is gone, so it counts among `images` only.
    expect(holds.affectedImagesBySet).toEqual([
      { iocSet: expect.stringMatching(/^xz-cve-2024-3094@/), images: 3, finalFs: 1, finalFsUnknown: 1 },
    ]);
  });

  it('is counted by rematch among the images matched from their other layers, in words that say so', async () => {
    const r = await runCli(['rematch', '--db', db]);
    expect(r.code).toBe(0);
    // Every image here has the failed layer: all four are matched without its facts.
    expect(r.stdout).toMatch(
      /findings \(4 with a layer that failed analysis, matched from their other layers; 0 waiting for a pending layer\)\n$/,
    );
  });

  it('is analyzed by the next scan once its bytes arrive intact, and the verdicts become certain', async () => {
    const r = await scan();
    expect(r.code).toBe(0);
    expect(verdicts(r.stdout)).toEqual({
      'study/xz-below': 'AFFECTED',
      'study/xz-above': 'AFFECTED',
      'study/xz-fixed': 'lower layer only',
      'study/clean': 'clean',
    });
    const { byRepo, stderr } = await dpkgSurvival();
    expect(byRepo).toEqual({
      'study/xz-below': ['true'],
      'study/xz-above': ['true'],
      'study/xz-fixed': ['false'],
    });
    expect(stderr).toBe('');
  });
});
