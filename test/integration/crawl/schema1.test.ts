/**
 * Docker schema1 manifests cost no pull where their type is known before the GET, and at most one
 * across runs where it is not. A real registry of the test's own that accepts schema1 (the shared ones
 * refuse it: test/helpers/schema1.ts) serves a signed schema1 manifest as a real one does: HEAD and GET
 * with the prettyjws Content-Type and the digest of the payload without signatures. A recording fault
 * proxy in front of it counts the manifest GETs; the fake Docker Hub lists the same digests for the Hub path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage, buildIndex, MEDIA_TYPES } from '../../../scripts/lib/image-builder.js';
import { pushImage, registryFetch } from '../../../scripts/lib/push.js';
import type { RunningRegistry } from '../../../scripts/lib/registry.js';
import { HttpClient } from '../../../src/crawler/http.js';
import { RegistryClient } from '../../../src/crawler/registry/client.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';
import {
  pushSchema1,
  SCHEMA1_SIGNED,
  type SignedSchema1,
  startSchema1Registry,
} from '../../helpers/schema1.js';

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
/** A usable image pushed next to every schema1 one: it must still be crawled. */
let good: BuiltImage;

beforeAll(async () => {
  registry = await startSchema1Registry();
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-schema1-');
  good = await buildImage({
    layers: [{ entries: [{ type: 'file', path: 'etc/debian_version', content: '12.5\n' }] }],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

/** Pushes a schema1 image as `<repository>:old` and the usable one as `<repository>:new`. */
async function pushPair(repository: string): Promise<SignedSchema1> {
  await pushImage(registry, repository, 'new', good);
  return pushSchema1(registry, repository, 'old');
}

/** Requests the proxy saw for one manifest path (`GET` is a counted pull on Docker Hub). */
const seen = (method: string, path: string) =>
  proxy.log.filter((e) => e.method === method && e.path === path).length;
const manifestPath = (repository: string, ref: string) => `/v2/${repository}/manifests/${ref}`;

/** Crawl settings for images of the schema1 registry, through the proxy. */
const viaProxy = (images: string[]) => ({
  seeds: { images: images.map((i) => `${registry.host}/${i}`) },
  registries: { [registry.host]: { endpoint: proxy.url } },
});

interface Failure {
  kind: string;
  error_code: string;
  message: string;
}
const failuresOf = (dbPath: string, runId: number) =>
  queryDataset<Failure>(
    dbPath,
    'SELECT kind, error_code, message FROM failures WHERE run_id = ? ORDER BY id',
    runId,
  );
const imageCount = (dbPath: string, digest: string) =>
  queryDataset<{ n: number }>(dbPath, 'SELECT count(*) AS n FROM images WHERE digest = ?', digest)[0]!.n;

describe('a schema1 manifest', () => {
  it('is answered to a HEAD with its schema1 type, although the Accept header hubcrawl sends does not list it', async () => {
    const repository = 'legacy/head';
    const s1 = await pushSchema1(registry, repository, 'old');
    const http = new HttpClient({ sleep: async () => {} });
    try {
      const head = await new RegistryClient({ registry: registry.host, http }).headManifest(
        repository,
        'old',
      );
      expect(head).toMatchObject({ digest: s1.digest, mediaType: SCHEMA1_SIGNED });
      expect(http.stats.countedPulls).toBe(0);
    } finally {
      await http.close();
    }
  });

  it('costs no manifest GET in any run when the HEAD of its tag says schema1', async () => {
    const repository = 'legacy/tagged';
    const s1 = await pushPair(repository);
    const dbPath = ws.dbPath('tagged');
    const settings = viaProxy([`${repository}:old`, `${repository}:new`]);
    for (const runId of [1, 2]) {
      const out = await runTestCrawl(dbPath, ws.iocFile, settings);
      expect(out).toMatchObject({ runId, status: 'completed-with-failures', failedItems: 1 });
      const [failure, ...others] = failuresOf(dbPath, runId);
      expect(others).toEqual([]);
      expect(failure).toMatchObject({ kind: 'reference', error_code: 'UNSUPPORTED' });
      expect(failure!.message).toContain(`${repository}:old@${s1.digest} is a Docker schema1 manifest`);
      expect(failure!.message).toMatch(/reads only schema2 and OCI manifests.*no pull was spent/);
    }
    expect(seen('HEAD', manifestPath(repository, 'old'))).toBe(2);
    expect(seen('GET', manifestPath(repository, s1.digest))).toBe(0);
    expect(imageCount(dbPath, good.digest)).toBe(1);
  });

  it('costs no manifest GET in any run when it is reached by digest: the HEAD confirming the seed says schema1', async () => {
    const repository = 'legacy/pinned';
    const s1 = await pushPair(repository);
    const dbPath = ws.dbPath('pinned');
    const settings = viaProxy([`${repository}@${s1.digest}`, `${repository}:new`]);
    for (const runId of [1, 2]) {
      const out = await runTestCrawl(dbPath, ws.iocFile, settings);
      expect(out).toMatchObject({ runId, status: 'completed-with-failures', failedItems: 1 });
      const [failure, ...others] = failuresOf(dbPath, runId);
      expect(others).toEqual([]);
      expect(failure).toMatchObject({ kind: 'reference', error_code: 'UNSUPPORTED' });
      expect(failure!.message).toContain(`${repository}@${s1.digest} is a Docker schema1 manifest`);
      // Only the usable image's GET, in the first run.
      expect(out.stats).toMatchObject({ manifestsFetched: runId === 1 ? 1 : 0 });
    }
    // A seed's digest is confirmed by a HEAD in its repository (not a counted pull), which gives the type.
    expect(seen('HEAD', manifestPath(repository, s1.digest))).toBe(2);
    expect(seen('GET', manifestPath(repository, s1.digest))).toBe(0);
    expect(imageCount(dbPath, good.digest)).toBe(1);
  });

  it('is pulled once across runs when the HEAD of its tag gives a Content-Type that says nothing', async () => {
    const repository = 'legacy/generic';
    const s1 = await pushPair(repository);
    // A registry that answers HEAD with a generic type (and the right digest): only the GET can tell.
    proxy.addRule({
      method: 'HEAD',
      path: new RegExp(`^${manifestPath(repository, 'old')}$`),
      times: Number.POSITIVE_INFINITY,
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/json', 'docker-content-digest': s1.digest },
      },
    });
    const dbPath = ws.dbPath('generic');
    const settings = viaProxy([`${repository}:old`, `${repository}:new`]);
    for (const runId of [1, 2]) {
      const out = await runTestCrawl(dbPath, ws.iocFile, settings);
      expect(out).toMatchObject({ runId, status: 'completed-with-failures', failedItems: 1 });
      expect(failuresOf(dbPath, runId).map((f) => [f.kind, f.error_code])).toEqual([
        ['manifest', 'UNSUPPORTED'],
      ]);
    }
    expect(seen('GET', manifestPath(repository, s1.digest))).toBe(1);
    // The verdict is kept by digest, with the run that paid for it; later runs say so without a GET.
    expect(queryDataset(dbPath, 'SELECT digest, media_type, run_id FROM unsupported_manifests')).toEqual([
      { digest: s1.digest, media_type: SCHEMA1_SIGNED, run_id: 1 },
    ]);
    expect(failuresOf(dbPath, 2)[0]!.message).toMatch(
      /is a Docker schema1 manifest .*as the GET of run 1 found.*no pull was spent/,
    );
    expect(imageCount(dbPath, good.digest)).toBe(1);
  });

  it('listed in a manifest list costs no GET, and the list’s other platform is crawled', async () => {
    const repository = 'legacy/mixed';
    const s1 = await pushPair(repository);
    const list = buildIndex({ images: [good], format: 'docker' });
    const body = JSON.parse(list.manifest.toString()) as { manifests: Array<Record<string, unknown>> };
    // The manifest-v2-2 spec allows a manifest list to reference a schema1 manifest by its type.
    body.manifests.push({
      mediaType: SCHEMA1_SIGNED,
      digest: s1.digest,
      size: s1.payload.length,
      platform: { os: 'linux', architecture: 's390x' },
    });
    const raw = Buffer.from(JSON.stringify(body));
    const put = await registryFetch(
      registry,
      repository,
      `${registry.url}${manifestPath(repository, 'list')}`,
      {
        method: 'PUT',
        headers: { 'content-type': MEDIA_TYPES.dockerManifestList },
        body: raw,
      },
    );
    expect(put.status, await put.text()).toBe(201);
    const dbPath = ws.dbPath('mixed');
    const out = await runTestCrawl(dbPath, ws.iocFile, viaProxy([`${repository}:list`]));
    expect(out).toMatchObject({ status: 'completed-with-failures', failedItems: 1 });
    const [failure] = failuresOf(dbPath, 1);
    expect(failure).toMatchObject({ kind: 'manifest', error_code: 'UNSUPPORTED' });
    expect(failure!.message).toMatch(/schema1 manifest .*as the index that lists it says/);
    expect(seen('GET', manifestPath(repository, s1.digest))).toBe(0);
    expect(imageCount(dbPath, good.digest)).toBe(1);
  });
});

describe('a schema1 tag on the Docker Hub path', () => {
  let hub: FakeHub;
  const repository = 'legacy/hub';
  let s1: SignedSchema1;
  let dbPath: string;

  beforeAll(async () => {
    s1 = await pushPair(repository);
    hub = await startFakeHub({
      repos: [
        {
          namespace: 'legacy',
          name: 'hub',
          tags: [
            fakeHubTagFor('new', good),
            {
              name: 'old',
              digest: s1.digest,
              mediaType: SCHEMA1_SIGNED,
              lastPushed: '2015-06-01T00:00:00.000000Z',
              images: [{ os: 'linux', architecture: 'amd64', digest: s1.digest }],
            },
          ],
        },
      ],
    });
    dbPath = ws.dbPath('hub');
  });

  afterAll(async () => {
    await hub?.stop();
  });

  it('costs neither a HEAD nor a GET when the Hub tag listing says schema1', async () => {
    const out = await runTestCrawl(dbPath, ws.iocFile, {
      seeds: { repos: [`docker.io/${repository}`] },
      hubApiUrl: hub.url,
      registryMirror: proxy.url,
    });
    expect(out).toMatchObject({ status: 'completed-with-failures', failedItems: 1 });
    const [failure, ...others] = failuresOf(dbPath, 1);
    expect(others).toEqual([]);
    expect(failure).toMatchObject({ kind: 'reference', error_code: 'UNSUPPORTED' });
    expect(failure!.message).toContain(
      `docker.io/${repository}:old@${s1.digest} is a Docker schema1 manifest`,
    );
    expect(failure!.message).toContain('as the Docker Hub tag listing says');
    expect(seen('HEAD', manifestPath(repository, 'old'))).toBe(0);
    expect(seen('GET', manifestPath(repository, s1.digest))).toBe(0);
    expect(imageCount(dbPath, good.digest)).toBe(1);
  });
});
