/**
 * A manifest is keyed by digest, so when the repository an item carries refuses it (404: deleted there,
 * private, a registry that scopes blobs per repository), the crawl asks the other repositories known to
 * reference the same digest. The real registry serves the image under two repositories; the fault proxy
 * refuses the by-digest GET in one of them. The tests run in order on one dataset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import type { BuiltImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let image: BuiltImage;
let dbPath: string;

beforeAll(async () => {
  registry = await startRegistry();
  image = (await buildCrawlScenario()).clean;
  for (const repo of ['fallback/served', 'fallback/refusing']) await pushImage(registry, repo, '1', image);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('fallback');
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

const crawlRepo = (repo: string) =>
  runTestCrawl(dbPath, ws.iocFile, {
    seeds: { images: [`${registry.host}/${repo}:1`] },
    registries: { [registry.host]: { endpoint: proxy.url } },
  });

/** The registry answers 404 to the by-digest GET of the image manifest in `repo`, every time. */
const refuseManifestIn = (repo: string) =>
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`^/v2/${repo}/manifests/${image.digest}$`),
    times: Number.POSITIVE_INFINITY,
    action: { kind: 'respond', status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' },
  });

const manifestGets = () =>
  proxy.log
    .filter((e) => e.method === 'GET' && e.path.endsWith(`/manifests/${image.digest}`))
    .map((e) => [e.path.split('/').slice(2, 4).join('/'), e.status]);

describe('a manifest refused by the repository that reached it', () => {
  it('fails as the refusal it is when no other repository is known to hold it', async () => {
    refuseManifestIn('fallback/served');
    const out = await crawlRepo('fallback/served');
    proxy.reset();
    expect(out.status).toBe('completed-with-failures');
    const failures = queryDataset<{ kind: string; error_code: string; message: string }>(
      dbPath,
      `SELECT kind, error_code, message FROM failures`,
    );
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f.kind === 'manifest' && f.error_code === 'PERMANENT')).toBe(true);
    expect(failures[0]?.message).toContain('404');
  });

  it('is fetched from another repository known to reference the same digest', async () => {
    // The first crawl recorded fallback/served's tag pointing at the digest; now the other one refuses.
    refuseManifestIn('fallback/refusing');
    const out = await crawlRepo('fallback/refusing');
    expect(out.status).toBe('completed');
    expect(manifestGets()).toEqual([
      ['fallback/refusing', 404],
      ['fallback/served', 200],
    ]);
    const images = queryDataset(dbPath, 'SELECT digest FROM images WHERE digest = ?', image.digest);
    expect(images).toHaveLength(1);
  });
});
