/**
 * `hubcrawl scan REF` analyzes the layers of the images it was asked about, and no others: a dataset's
 * backlog (layers an earlier crawl failed in an outage, or left pending when it stopped on an error) is a
 * crawl's to work through, not a quick look at one image's. The real registry serves the images; the fault
 * proxy in front of it fails one image's layer and logs every request, which is what says what was fetched.
 */
import { execFileSync } from 'node:child_process';
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

let registry: RunningRegistry;
let proxy: FaultProxy;
let config: string;
let db: string;
let base: BuiltBlob;
let backlog: BuiltBlob;
let own: BuiltBlob;

beforeAll(async () => {
  const dir = tempDir('scan-scope');
  const setup = async () => {
    registry = await startRegistry({ auth: 'none', installIfMissing: true });
    proxy = await startFaultProxy(registry.url);
    base = await buildLayer(debianBaseEntries({ codename: 'bookworm' }));
    const app = async (name: string) =>
      buildLayer([{ type: 'file', path: `opt/${name}/data.bin`, content: randomBytes(32 * 1024) }]);
    backlog = await app('backlog');
    own = await app('own');
    // The shared base is a layer of both images: the scanned image needs it too.
    await pushImage(registry, 'scope/crawled', '1', await buildImage({ layers: [base, backlog] }));
    await pushImage(registry, 'scope/scanned', '1', await buildImage({ layers: [base, own] }));
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

const ref = (repo: string) => `${registry.host}/scope/${repo}:1`;
const cli = (args: string[]) => runCli([...args, '--config', config, '--db', db, '--quiet']);
const blobGets = () => proxy.log.filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
const fetched = (layer: BuiltBlob) => blobGets().some((e) => e.path.endsWith(`/blobs/${layer.digest}`));

/** The frontier state of a layer's item and its layers row's status. */
async function layerState(layer: BuiltBlob): Promise<{ item: string; layer: string }> {
  const r = await runCli([
    'query',
    '--db',
    db,
    '--format',
    'json',
    `SELECT f.state AS item, l.status AS layer FROM frontier f JOIN layers l ON l.digest = '${layer.digest}'
      WHERE f.kind = 'layer' AND f.key LIKE '${layer.digest}|%'`,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const rows = JSON.parse(r.stdout) as Array<{ item: string; layer: string }>;
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

describe('scan REF', () => {
  it("leaves a crawl's failed layer alone while it scans another image", async () => {
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${backlog.digest}$`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 503 },
    });
    const crawl = await cli(['crawl', '--image', ref('crawled'), '--max-attempts', '2']);
    expect(crawl.code, crawl.stderr).toBe(1); // completed with failures: the backlog layer
    expect(await layerState(backlog)).toEqual({ item: 'failed', layer: 'failed' });
    proxy.reset(); // the outage is over: a crawl would fetch the layer now

    const scan = await cli(['scan', ref('scanned')]);
    expect(scan.code, scan.stderr).toBe(0);
    expect(scan.stdout).toMatch(new RegExp(`${ref('scanned')} .* clean`));
    expect(fetched(own)).toBe(true);
    expect(fetched(backlog)).toBe(false);
    expect(await layerState(backlog)).toEqual({ item: 'failed', layer: 'failed' });
  });

  it('leaves a pending layer of another run alone too', async () => {
    // What a crawl that ended on an error (status 'failed', not resumed by a scan) leaves behind.
    execFileSync('sqlite3', [
      db,
      `UPDATE frontier SET state = 'pending' WHERE kind = 'layer' AND key LIKE '${backlog.digest}|%'`,
    ]);
    proxy.reset();
    const scan = await cli(['scan', ref('scanned')]);
    expect(scan.code, scan.stderr).toBe(0);
    expect(blobGets()).toEqual([]); // the scanned image's layers are all known now
    expect(await layerState(backlog)).toEqual({ item: 'pending', layer: 'failed' });
  });

  it("analyzes that layer once it is the scanned image's own", async () => {
    proxy.reset();
    const scan = await cli(['scan', ref('crawled')]);
    expect(scan.code, scan.stderr).toBe(0);
    expect(scan.stdout).toMatch(new RegExp(`${ref('crawled')} .* clean`));
    expect(fetched(backlog)).toBe(true);
    expect(await layerState(backlog)).toEqual({ item: 'done', layer: 'analyzed' });
  });
});
