/**
 * The registry client through a fault-injecting proxy in front of the real distribution registry:
 * 429s, 5xx, resets, stalls, short and corrupt bodies, hostile manifests, cross-host redirects.
 * Sleeps are injected, so pauses are asserted on the values asked for, never on the wall clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import type { Digest } from '../../../src/core/digest.js';
import {
  BudgetExhaustedError,
  CorruptInputError,
  DigestMismatchError,
  LimitExceededError,
  PermanentError,
  RetryableError,
  UnsupportedError,
} from '../../../src/core/errors.js';
import { HttpClient, type HttpClientOptions } from '../../../src/crawler/http.js';
import { RegistryClient } from '../../../src/crawler/registry/client.js';
import { CredentialStore } from '../../../src/crawler/registry/credentials.js';
import { OCI_MANIFEST } from '../../../src/crawler/registry/media-types.js';
import { type BlobHost, redirectBlobsTo, startBlobHost } from '../../helpers/blob-host.js';
import { drain, type Fixtures, pushFixtures } from './fixtures.js';

const MANIFEST = /\/v2\/fixtures\/schema2\/manifests\//;
const BLOBS = /\/v2\/fixtures\/big\/blobs\//;

describe('registry client behind a fault proxy (htpasswd registry)', () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let proxy: FaultProxy;
  let blobHost: BlobHost;
  let http: HttpClient;
  let sleeps: number[];
  let client: RegistryClient;
  let bigLayer: { digest: Digest; data: Buffer };

  const makeClient = (
    opts: HttpClientOptions = {},
    extra: { countPulls?: boolean; maxManifestBytes?: number } = {},
  ) => {
    sleeps = [];
    http = new HttpClient({
      retryBaseMs: 5,
      maxRetries: 3,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      ...opts,
    });
    const credentials = CredentialStore.fromSources({
      dockerConfigPath: null,
      explicit: { [proxy.host]: { username: reg.username!, password: reg.password! } },
    });
    client = new RegistryClient({ registry: proxy.host, http, credentials, ...extra });
  };

  /**
   * Meets the registry's 401 once, so the next request carries credentials and a fault rule hits the
   * request under test rather than the anonymous probe.
   */
  const prime = async () => {
    await client.headManifest('fixtures/big', 'latest');
  };

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    fx = await pushFixtures(reg);
    proxy = await startFaultProxy(reg.url);
    const l = fx.big.layers[0]!;
    bigLayer = { digest: l.digest as Digest, data: l.data };
    blobHost = await startBlobHost(l.data);
  });
  afterAll(async () => {
    await http?.close();
    await blobHost?.stop();
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(async () => {
    await http?.close();
    proxy.clearRules();
    makeClient();
  });

  it('waits out a 429 with Retry-After in seconds and succeeds without counting a failure', async () => {
    proxy.addRule({
      path: MANIFEST,
      action: { kind: 'respond', status: 429, headers: { 'retry-after': '2' } },
    });
    expect((await client.getManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThan(1900);
    expect(sleeps[0]).toBeLessThanOrEqual(2000);
    expect(http.stats.rateLimitPauses).toBe(1);
    expect(http.stats.failures).toBe(0);
    expect(http.stats.retries).toBe(0);
  });

  it('waits out a 429 with Retry-After as an HTTP date', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    proxy.addRule({
      path: MANIFEST,
      action: { kind: 'respond', status: 429, headers: { 'retry-after': at } },
    });
    expect((await client.headManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThan(25_000);
    expect(sleeps[0]).toBeLessThanOrEqual(30_000);
    expect(http.stats.failures).toBe(0);
  });

  it('backs off after a TOOMANYREQUESTS body without Retry-After', async () => {
    // distribution's own request-rate message: Docker Hub's "pull rate limit" body ends the pulls instead.
    const body = JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'too many requests' }] });
    proxy.addRule({
      path: MANIFEST,
      action: { kind: 'respond', status: 429, body, headers: { 'content-type': 'application/json' } },
    });
    expect((await client.getManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
    expect(http.stats.rateLimitPauses).toBe(1);
    expect(http.stats.failures).toBe(0);
  });

  it('ends counted pulls with BudgetExhaustedError on a 429 with ratelimit-remaining 0', async () => {
    makeClient({}, { countPulls: true });
    proxy.addRule({
      path: MANIFEST,
      action: {
        kind: 'respond',
        status: 429,
        headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' },
      },
    });
    const err = await client.getManifest('fixtures/schema2', 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExhaustedError);
    expect((err as Error).message).toMatch(/until about/);
    // HEAD is not a pull and still works.
    expect((await client.headManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
  });

  it('refuses manifest GETs past maxPulls when pulls are counted', async () => {
    makeClient({ maxPulls: 1 }, { countPulls: true });
    await client.getManifest('fixtures/schema2', 'v1');
    await expect(client.getManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(BudgetExhaustedError);
    expect(http.stats.countedPulls).toBe(1);
  });

  it('retries a 503 and succeeds', async () => {
    proxy.addRule({
      path: MANIFEST,
      times: 2,
      action: { kind: 'respond', status: 503, body: 'unavailable' },
    });
    expect((await client.getManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
    expect(http.stats.retries).toBe(2);
    expect(http.stats.failures).toBe(0);
  });

  it('retries a connection reset before the headers', async () => {
    proxy.addRule({ path: MANIFEST, action: { kind: 'reset-before-headers' } });
    expect((await client.headManifest('fixtures/schema2', 'v1')).digest).toBe(fx.schema2.digest);
    expect(http.stats.retries).toBe(1);
  });

  it('resumes a blob reset mid-body with Range and still verifies it', async () => {
    await prime();
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'reset-mid-body', afterBytes: 100_000 } });
    const bytes = await drain(await client.openBlob('fixtures/big', bigLayer.digest));
    expect(bytes.equals(bigLayer.data)).toBe(true);
    const gets = proxy.log.filter((e) => e.method === 'GET' && BLOBS.test(e.path)).slice(-2);
    // The proxy logs the status it forwarded before cutting the body.
    expect(gets.map((e) => e.status)).toEqual([200, 206]);
    expect(gets[1]?.headers.range).toMatch(/^bytes=\d+-$/);
  });

  it('resumes a blob whose body stalls past the read timeout', async () => {
    makeClient({ timeoutMs: 300 });
    await prime();
    proxy.addRule({
      method: 'GET',
      path: BLOBS,
      action: { kind: 'stall-body', afterBytes: 50_000, stallMs: 3000 },
    });
    const bytes = await drain(await client.openBlob('fixtures/big', bigLayer.digest));
    expect(bytes.equals(bigLayer.data)).toBe(true);
  });

  it('resumes a blob body shorter than its Content-Length', async () => {
    await prime();
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'short-body', dropBytes: 1000 } });
    const bytes = await drain(await client.openBlob('fixtures/big', bigLayer.digest));
    expect(bytes.equals(bigLayer.data)).toBe(true);
  });

  it('resumes a close-delimited blob body cut short of the size its descriptor gives', async () => {
    await prime();
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'close-delimited-cut', dropBytes: 5000 } });
    const size = bigLayer.data.length;
    const bytes = await drain(await client.openBlob('fixtures/big', bigLayer.digest, { size }));
    expect(bytes.equals(bigLayer.data)).toBe(true);
    const gets = proxy.log.filter((e) => e.method === 'GET' && BLOBS.test(e.path)).slice(-2);
    expect(gets[1]?.headers.range).toBe(`bytes=${size - 5000}-`);
    // Without the size, nothing says the body was cut: the digest refuses it.
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'close-delimited-cut', dropBytes: 5000 } });
    const blind = await drain(await client.openBlob('fixtures/big', bigLayer.digest)).catch(
      (e: unknown) => e,
    );
    expect(blind).toBeInstanceOf(DigestMismatchError);
  });

  it('lets the digest decide when a descriptor gives more bytes than the blob has (416 for the rest)', async () => {
    await prime();
    const size = bigLayer.data.length + 100;
    const bytes = await drain(await client.openBlob('fixtures/big', bigLayer.digest, { size }));
    expect(bytes.equals(bigLayer.data)).toBe(true);
    const gets = proxy.log.filter((e) => e.method === 'GET' && BLOBS.test(e.path)).slice(-2);
    expect(gets.map((e) => [e.status, e.headers.range])).toEqual([
      [200, undefined],
      [416, `bytes=${bigLayer.data.length}-`],
    ]);
  });

  it('gives up with a RetryableError when a resumed response starts past the bytes received', async () => {
    await prime();
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'reset-mid-body', afterBytes: 100_000 } });
    // The resume (the next GET) is answered from a later offset than was asked for.
    proxy.addRule({
      method: 'GET',
      path: BLOBS,
      action: {
        kind: 'respond',
        status: 206,
        headers: { 'content-range': 'bytes 200000-200009/*' },
        body: 'x'.repeat(10),
      },
    });
    const err = await drain(await client.openBlob('fixtures/big', bigLayer.digest)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toMatch(/resumed response does not continue at byte \d+/);
  });

  it('reports a redirect without a Location as a PermanentError, not as bad content', async () => {
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'respond', status: 307 } });
    const err = await client.openBlob('fixtures/big', bigLayer.digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/answered 307 without a Location/);
  });

  it('rejects a corrupt blob with DigestMismatchError', async () => {
    await prime();
    proxy.addRule({ method: 'GET', path: BLOBS, action: { kind: 'corrupt-body', atByte: 12345 } });
    await expect(drain(await client.openBlob('fixtures/big', bigLayer.digest))).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
  });

  it('follows a 307 to a second host without the Authorization header', async () => {
    await prime();
    redirectBlobsTo(proxy, blobHost, { times: 1 });
    const before = blobHost.requests.length;
    const bytes = await drain(await client.openBlob('fixtures/big', bigLayer.digest));
    expect(bytes.equals(bigLayer.data)).toBe(true);
    const toRegistry = proxy.log.filter((e) => BLOBS.test(e.path)).at(-1);
    expect(toRegistry?.headers.authorization).toMatch(/^Basic /);
    const toCdn = blobHost.requests.slice(before);
    expect(toCdn).toHaveLength(1);
    expect(toCdn[0]?.path).toContain('X-Amz-Signature=fixture');
    expect(toCdn[0]?.headers.authorization).toBeUndefined();
  });

  it('reports a redirect loop as a clear PermanentError', async () => {
    proxy.addRule({
      method: 'GET',
      path: BLOBS,
      times: Number.POSITIVE_INFINITY,
      action: {
        kind: 'respond',
        status: 307,
        headers: { location: `/v2/fixtures/big/blobs/${bigLayer.digest}?loop=1` },
      },
    });
    const err = await client.openBlob('fixtures/big', bigLayer.digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/redirect loop/);
  });

  it('refuses a manifest body over the size limit', async () => {
    makeClient({}, { maxManifestBytes: 64 * 1024 });
    const huge = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, pad: 'x'.repeat(200_000) });
    proxy.addRule({
      path: MANIFEST,
      action: { kind: 'respond', status: 200, body: huge, headers: { 'content-type': OCI_MANIFEST } },
    });
    await expect(client.getManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(LimitExceededError);
  });

  it('reports a malformed JSON manifest as CorruptInputError', async () => {
    proxy.addRule({
      path: MANIFEST,
      action: {
        kind: 'respond',
        status: 200,
        body: '{"schemaVersion": 2,',
        headers: { 'content-type': OCI_MANIFEST },
      },
    });
    await expect(client.getManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(CorruptInputError);
  });

  it('reports a non-manifest media type as UnsupportedError', async () => {
    proxy.addRule({
      path: MANIFEST,
      action: {
        kind: 'respond',
        status: 200,
        body: '<html></html>',
        headers: { 'content-type': 'text/html' },
      },
    });
    await expect(client.getManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(UnsupportedError);
  });

  it('reports a manifest whose layers lack digests as CorruptInputError', async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 3 }],
    });
    proxy.addRule({
      path: MANIFEST,
      action: { kind: 'respond', status: 200, body, headers: { 'content-type': OCI_MANIFEST } },
    });
    await expect(client.getManifest('fixtures/schema2', 'v1')).rejects.toThrow(/config\.digest/);
  });

  it('rejects a manifest whose Docker-Content-Digest does not match its bytes', async () => {
    proxy.addRule({
      path: MANIFEST,
      action: {
        kind: 'respond',
        status: 200,
        body: fx.schema2.manifest.toString(),
        headers: {
          'content-type': fx.schema2.mediaType,
          'docker-content-digest': `sha256:${'0'.repeat(64)}`,
        },
      },
    });
    await expect(client.getManifest('fixtures/schema2', 'v1')).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('rejects a manifest fetched by digest whose bytes hash differently', async () => {
    proxy.addRule({
      path: /\/manifests\/sha256:/,
      action: {
        kind: 'respond',
        status: 200,
        body: fx.oci.manifest.toString(),
        headers: { 'content-type': OCI_MANIFEST },
      },
    });
    await expect(client.getManifest('fixtures/schema2', fx.schema2.digest)).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
  });
});

describe('registry client behind a fault proxy (token registry)', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let http: HttpClient;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    await pushFixtures(reg);
    proxy = await startFaultProxy(reg.url);
    http = new HttpClient({ sleep: async () => {} });
  });
  afterAll(async () => {
    await http?.close();
    await proxy?.stop();
    await reg?.stop();
  });

  it('refreshes a cached token that the registry refuses with 401', async () => {
    const client = new RegistryClient({ registry: proxy.host, http });
    const before = reg.token!.requests;
    await client.headManifest('fixtures/schema2', 'v1');
    expect(reg.token!.requests - before).toBe(1);
    // The registry now calls the cached token expired.
    proxy.addRule({
      path: MANIFEST,
      action: {
        kind: 'respond',
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${reg.token!.realm}",service="${reg.token!.service}",scope="repository:fixtures/schema2:pull",error="invalid_token"`,
        },
      },
    });
    await client.headManifest('fixtures/schema2', 'v1');
    expect(reg.token!.requests - before).toBe(2);
    const sent = proxy.log.filter((e) => MANIFEST.test(e.path)).map((e) => e.headers.authorization);
    // anonymous probe, first token, refused first token, fresh token
    expect(sent).toHaveLength(4);
    expect(sent[0]).toBeUndefined();
    expect(sent[2]).toBe(sent[1]);
    expect(sent[3]).not.toBe(sent[2]);
  });
});
