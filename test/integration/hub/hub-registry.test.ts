/**
 * The fake Hub paired with the real distribution registry: images built and pushed by the test
 * helpers, described to the fake Hub by their digests. What the Hub client reports must match
 * what the registry serves (HEAD Docker-Content-Digest), and the registry's tags/list must offer
 * what the Hub refuses past its anonymous offset cap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, buildIndex, buildLayer, MEDIA_TYPES } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import type { HttpClient } from '../../../src/crawler/http.js';
import type { HubTag } from '../../../src/crawler/hub/client.js';
import { type FakeHub, type FakeHubTag, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';

const ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
].join(', ');

let registry: RunningRegistry;
let hub: FakeHub;
let http: HttpClient;
let hubModule: typeof import('../../../src/crawler/hub/client.js');

beforeAll(async () => {
  registry = await startRegistry();
  const base = await buildLayer([{ type: 'file', path: 'etc/debian_version', content: 'trixie/sid\n' }]);
  const amd64 = await buildImage({
    layers: [base, { entries: [{ type: 'file', path: 'app/amd64', content: 'a' }] }],
    platform: { os: 'linux', architecture: 'amd64' },
  });
  const arm64 = await buildImage({
    layers: [base, { entries: [{ type: 'file', path: 'app/arm64', content: 'b' }] }],
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  });
  const index = buildIndex({ images: [amd64, arm64], format: 'oci', withAttestation: true });
  await pushImage(registry, 'acme/app', 'multi', index);
  await pushImage(registry, 'acme/app', 'single', amd64);
  // Enough tags for the anonymous cap (offset 100 here) to cut the Hub listing short.
  const many: FakeHubTag[] = [fakeHubTagFor('multi', index), fakeHubTagFor('single', amd64)];
  for (let i = 0; i < 130; i++) {
    await pushImage(registry, 'acme/app', `v${i}`, amd64);
    many.push(fakeHubTagFor(`v${i}`, amd64));
  }
  hub = await startFakeHub({
    repos: [{ namespace: 'acme', name: 'app', pullCount: 42, tags: many }],
    anonymousOffsetCap: 100,
  });
  // Loaded after the pushes: importing undici 7 makes it Node's global fetch dispatcher, and it
  // rejects the explicit content-length header scripts/lib/push.ts sends with blob uploads.
  const { HttpClient } = await import('../../../src/crawler/http.js');
  hubModule = await import('../../../src/crawler/hub/client.js');
  http = new HttpClient();
});

afterAll(async () => {
  await http?.close();
  await hub?.stop();
  await registry?.stop();
});

async function headDigest(reference: string): Promise<string | undefined> {
  const res = await http.request({
    method: 'HEAD',
    url: `${registry.url}/v2/acme/app/manifests/${reference}`,
    headers: { accept: ACCEPT },
  });
  await res.dump();
  const d = res.headers['docker-content-digest'];
  return Array.isArray(d) ? d[0] : d;
}

describe('fake Hub over the real registry', () => {
  it('reports tag and platform digests that the registry serves', async () => {
    const hc = new hubModule.HubClient({ http, baseUrl: hub.url, pageSize: 50 });
    const tags: HubTag[] = [];
    for await (const page of hc.listTagPages('acme', 'app')) {
      tags.push(...page.results);
      if (tags.length >= 2) break;
    }
    const [multi, single] = tags as [HubTag, HubTag];
    expect(multi.mediaType).toBe(MEDIA_TYPES.ociIndex);
    expect(await headDigest('multi')).toBe(multi.digest);
    expect(await headDigest('single')).toBe(single.digest);
    expect(multi.images.map((i) => `${i.os}/${i.architecture}${i.variant ? `/${i.variant}` : ''}`)).toEqual([
      'linux/amd64',
      'linux/arm64/v8',
    ]);
    for (const image of multi.images) expect(await headDigest(image.digest!)).toBe(image.digest);
  });

  it('completes the listing past the anonymous cap from the registry tags/list', async () => {
    const hc = new hubModule.HubClient({ http, baseUrl: hub.url, pageSize: 50 });
    const registryTags = async function* () {
      const res = await http.request({ url: `${registry.url}/v2/acme/app/tags/list` });
      yield* ((await res.json()) as { tags: string[] }).tags;
    };
    const out: Array<{ name: string; source: string }> = [];
    for await (const t of hc.listTagsWithFallback('acme', 'app', registryTags)) {
      out.push({ name: t.tag.name, source: t.source });
    }
    expect(out.filter((t) => t.source === 'hub')).toHaveLength(100);
    expect(out.filter((t) => t.source === 'registry')).toHaveLength(32);
    expect(new Set(out.map((t) => t.name)).size).toBe(132);
  });
});
