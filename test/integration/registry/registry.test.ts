/**
 * The registry client against the real distribution registry on loopback, in its three auth
 * flavours: anonymous, htpasswd Basic, and token auth with a JWT-signing token service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import type { StartedTokenService } from '../../../scripts/lib/token-service.js';
import { sha256Digest } from '../../../src/core/digest.js';
import { AuthError, HubcrawlError, LimitExceededError, PermanentError } from '../../../src/core/errors.js';
import { HttpClient } from '../../../src/crawler/http.js';
import { RegistryClient } from '../../../src/crawler/registry/client.js';
import { CredentialStore } from '../../../src/crawler/registry/credentials.js';
import { selectPlatforms } from '../../../src/crawler/registry/manifests.js';
import {
  DOCKER_MANIFEST_V2,
  OCI_INDEX,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
} from '../../../src/crawler/registry/media-types.js';
import { collect, drain, type Fixtures, pushFixtures } from './fixtures.js';

const noSleep = async () => {};

function credsFor(r: RunningRegistry): CredentialStore {
  return CredentialStore.fromSources({
    dockerConfigPath: null,
    explicit: r.username ? { [r.host]: { username: r.username, password: r.password! } } : {},
  });
}

describe('registry client, anonymous registry', () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let http: HttpClient;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    fx = await pushFixtures(reg);
    http = new HttpClient({ sleep: noSleep });
    client = new RegistryClient({ registry: reg.host, http });
  });
  afterAll(async () => {
    await http?.close();
    await reg?.stop();
  });

  it('talks plain HTTP to a loopback registry by default', () => {
    expect(client.baseUrl.href).toBe(`${reg.url}/`);
  });

  it('HEADs a schema2 manifest for its digest without a counted pull', async () => {
    const head = await client.headManifest('fixtures/schema2', 'v1');
    expect(head).toMatchObject({
      digest: fx.schema2.digest,
      mediaType: DOCKER_MANIFEST_V2,
      size: fx.schema2.manifest.length,
    });
    expect(http.stats.countedPulls).toBe(0);
  });

  it('GETs and parses a schema2 manifest whose bytes hash to its digest', async () => {
    const m = await client.getManifest('fixtures/schema2', 'v1');
    expect(m.digest).toBe(fx.schema2.digest);
    expect(sha256Digest(m.raw)).toBe(fx.schema2.digest);
    expect(m.parsed.kind).toBe('image');
    if (m.parsed.kind === 'image')
      expect(m.parsed.layers.map((l) => l.digest)).toEqual(fx.schema2.layers.map((l) => l.digest));
  });

  it('GETs an OCI manifest with a zstd layer', async () => {
    const m = await client.getManifest('fixtures/oci', 'zstd');
    expect(m.mediaType).toBe(OCI_MANIFEST);
    if (m.parsed.kind !== 'image') throw new Error('expected an image');
    expect(m.parsed.layers[0]?.mediaType).toBe(OCI_LAYER_ZSTD);
  });

  it('GETs a manifest by digest', async () => {
    const m = await client.getManifest('fixtures/oci', fx.oci.digest);
    expect(m.digest).toBe(fx.oci.digest);
  });

  it('GETs an index with two platforms and an attestation, and selects the platforms', async () => {
    const m = await client.getManifest('fixtures/multi', 'latest');
    expect(m.mediaType).toBe(OCI_INDEX);
    if (m.parsed.kind !== 'index') throw new Error('expected an index');
    expect(m.parsed.manifests).toHaveLength(4);
    expect(selectPlatforms(m.parsed, 'all').map((e) => e.digest)).toEqual(
      fx.index.children.map((c) => c.digest),
    );
    const arm = selectPlatforms(m.parsed, [{ os: 'linux', architecture: 'arm64' }]);
    expect(arm.map((e) => e.digest)).toEqual([fx.index.children[1]!.digest]);
    const child = await client.getManifest('fixtures/multi', arm[0]!.digest);
    expect(child.parsed.kind).toBe('image');
  });

  it('reports a missing tag as a PermanentError with status 404', async () => {
    await expect(client.headManifest('fixtures/schema2', 'nope')).rejects.toMatchObject({ status: 404 });
    await expect(client.getManifest('fixtures/schema2', 'nope')).rejects.toBeInstanceOf(PermanentError);
  });

  it('refuses a manifest over maxManifestBytes with a clear LimitExceededError', async () => {
    const small = new RegistryClient({ registry: reg.host, http, maxManifestBytes: 100 });
    const err = await small.getManifest('fixtures/schema2', 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'maxManifestBytes' });
    expect((err as Error).message).toBe(
      `manifest ${reg.host}/fixtures/schema2:v1 is more than maxManifestBytes (100 bytes)`,
    );
  });

  it('streams a zstd layer blob and verifies it', async () => {
    const layer = fx.oci.layers[0]!;
    const bytes = await drain(await client.openBlob('fixtures/oci', layer.digest as `sha256:${string}`));
    expect(bytes.equals(layer.data)).toBe(true);
  });

  it('streams a multi-megabyte blob in many chunks', async () => {
    const layer = fx.big.layers[0]!;
    let chunks = 0;
    let size = 0;
    for await (const c of await client.openBlob('fixtures/big', layer.digest as `sha256:${string}`)) {
      chunks += 1;
      size += c.length;
    }
    expect(size).toBe(layer.size);
    expect(chunks).toBeGreaterThan(1);
  });

  it('refuses a blob larger than maxBytes, naming the setting it came from', async () => {
    const layer = fx.big.layers[0]!;
    const digest = layer.digest as `sha256:${string}`;
    await expect(client.openBlob('fixtures/big', digest, { maxBytes: 1024 })).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 'maxBytes',
      value: layer.size,
    });
    const err = await client
      .openBlob('fixtures/big', digest, { maxBytes: 1024, maxBytesSetting: 'maxLayerBytes' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'maxLayerBytes' });
    expect((err as Error).message).toMatch(
      new RegExp(`is ${layer.size} bytes, more than maxLayerBytes \\(1024 bytes\\)`),
    );
  });

  it('lists every tag once even though distribution 2.8 ignores n and last on tags/list', async () => {
    const tags = await collect(client.listTags('fixtures/many', { pageSize: 2 }));
    expect([...tags].sort()).toEqual(fx.manyTags);
  });

  it('lists all tags in one request without n', async () => {
    const before = http.stats.requests;
    expect((await collect(client.listTags('fixtures/many'))).sort()).toEqual(fx.manyTags);
    expect(http.stats.requests - before).toBe(1);
  });

  it('walks _catalog in pages of n following Link', async () => {
    const before = http.stats.requests;
    expect(await collect(client.catalog({ pageSize: 2 }))).toEqual(fx.repositories);
    // 5 repositories in pages of 2: three pages, the last one without a Link.
    expect(http.stats.requests - before).toBe(3);
  });

  it('stops a catalog walk at the page cap with a clear error', async () => {
    const capped = new RegistryClient({ registry: reg.host, http, maxPages: 2 });
    await expect(collect(capped.catalog({ pageSize: 2 }))).rejects.toThrow(/more than 2 pages/);
  });
});

describe('registry client, htpasswd Basic auth', () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let http: HttpClient;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    fx = await pushFixtures(reg);
    http = new HttpClient({ sleep: noSleep });
  });
  afterAll(async () => {
    await http?.close();
    await reg?.stop();
  });

  it('authenticates with Basic credentials and then sends them up front', async () => {
    const client = new RegistryClient({ registry: reg.host, http, credentials: credsFor(reg) });
    const before = http.stats.byStatusClass['4xx'] ?? 0;
    expect((await client.getManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
    expect((await client.headManifest('fixtures/oci', 'zstd')).digest).toBe(fx.oci.digest);
    expect((await collect(client.listTags('fixtures/many', { pageSize: 3 }))).sort()).toEqual(fx.manyTags);
    // Only the first probe meets a 401; later requests carry the credentials.
    expect((http.stats.byStatusClass['4xx'] ?? 0) - before).toBe(1);
  });

  it('fails with AuthError when no credentials are configured', async () => {
    const client = new RegistryClient({ registry: reg.host, http });
    await expect(client.headManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(AuthError);
  });

  it('fails with AuthError when the password is wrong', async () => {
    const credentials = CredentialStore.fromSources({
      dockerConfigPath: null,
      explicit: { [reg.host]: { username: reg.username!, password: 'wrong' } },
    });
    const client = new RegistryClient({ registry: reg.host, http, credentials });
    await expect(client.headManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(AuthError);
  });

  it('lists the catalog with Basic credentials', async () => {
    const client = new RegistryClient({ registry: reg.host, http, credentials: credsFor(reg) });
    expect(await collect(client.catalog())).toEqual(fx.repositories);
  });
});

describe('registry client, token auth', () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let http: HttpClient;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    fx = await pushFixtures(reg);
    http = new HttpClient({ sleep: noSleep });
  });
  afterAll(async () => {
    await http?.close();
    await reg?.stop();
  });

  it('gets an anonymous pull token and caches it per scope', async () => {
    const client = new RegistryClient({ registry: reg.host, http });
    const before = reg.token!.requests;
    await client.headManifest('fixtures/schema2', 'v1');
    await client.getManifest('fixtures/schema2', 'v1');
    await drain(
      await client.openBlob('fixtures/schema2', fx.schema2.layers[0]!.digest as `sha256:${string}`),
    );
    expect((await collect(client.listTags('fixtures/many', { pageSize: 2 }))).sort()).toEqual(fx.manyTags);
    // One token per repository scope: fixtures/schema2 and fixtures/many.
    expect(reg.token!.requests - before).toBe(2);
  });

  it('sends Basic credentials to the token service when configured', async () => {
    const client = new RegistryClient({ registry: reg.host, http, credentials: credsFor(reg) });
    const n = (reg.token as StartedTokenService).authorizations.length;
    await client.headManifest('fixtures/oci', 'zstd');
    expect((reg.token as StartedTokenService).authorizations.slice(n)).toEqual([
      `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`,
    ]);
  });

  it('fetches a new token once the cached one has expired', async () => {
    let now = Date.now();
    const client = new RegistryClient({ registry: reg.host, http, now: () => now });
    const before = reg.token!.requests;
    await client.headManifest('fixtures/schema2', 'v1');
    await client.headManifest('fixtures/schema2', 'v1');
    expect(reg.token!.requests - before).toBe(1);
    now += 301_000;
    await client.headManifest('fixtures/schema2', 'v1');
    expect(reg.token!.requests - before).toBe(2);
  });

  it('surfaces a token service outage as a retryable error', async () => {
    const client = new RegistryClient({
      registry: reg.host,
      http: new HttpClient({ sleep: noSleep, maxRetries: 1 }),
    });
    reg.token!.setDown(true);
    try {
      const err = await client.headManifest('fixtures/schema2', 'v1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HubcrawlError);
      expect((err as HubcrawlError).code).toBe('RETRYABLE');
    } finally {
      reg.token!.setDown(false);
    }
  });

  it('fails fast with AuthError when the token service will not grant the catalog scope', async () => {
    const client = new RegistryClient({ registry: reg.host, http });
    const before = reg.token!.requests;
    const err = await collect(client.catalog()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/registry:catalog:\* \(insufficient_scope\)/);
    expect(reg.token!.requests - before).toBe(1);
  });

  it('asks for schema2 so the registry never rewrites a manifest to schema1', async () => {
    const m = await new RegistryClient({ registry: reg.host, http }).getManifest('fixtures/schema2', 'v1');
    expect(m.mediaType).toBe(DOCKER_MANIFEST_V2);
    expect(m.digest).toBe(fx.schema2.digest);
  });
});
