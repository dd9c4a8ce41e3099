/**
 * Which credential goes where, against the real distribution registry on loopback: a docker.io
 * mirror (the token registry standing in for one) never gets Docker Hub's credentials, only those
 * configured for its own host (moby/moby#42022); and a refused Basic password is sent once per
 * registry, however many requests are in flight (the htpasswd registry behind a recording fault proxy).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import { AuthError, CredentialRefusedError } from '../../../src/core/errors.js';
import { HttpClient } from '../../../src/crawler/http.js';
import { pullScope, RegistryAuth } from '../../../src/crawler/registry/auth.js';
import { RegistryClient } from '../../../src/crawler/registry/client.js';
import { CredentialStore } from '../../../src/crawler/registry/credentials.js';

const HUB_USER = 'bob';
const HUB_PAT = 'dckr_pat_HUBSECRET-must-not-reach-a-mirror';
const hubBasic = `Basic ${Buffer.from(`${HUB_USER}:${HUB_PAT}`).toString('base64')}`;
const noSleep = async () => {};

let image: BuiltImage;
const clients: HttpClient[] = [];
const dirs: string[] = [];

function http(): HttpClient {
  const h = new HttpClient({ sleep: noSleep, maxRetries: 0 });
  clients.push(h);
  return h;
}

beforeAll(async () => {
  image = await buildImage({
    layers: [{ entries: [{ type: 'file', path: 'etc/os-release', content: 'ID=debian\n' }] }],
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a docker.io mirror', () => {
  let reg: RunningRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    await pushImage(reg, 'library/app', '1', image);
  });
  afterAll(() => reg?.stop());

  /** The Authorization headers the mirror's token service received since `from`. */
  const sentToTokenService = (from: number) => reg.token!.authorizations.slice(from);

  it('says a realm that is a registry, not a token service, is misconfigured, instead of blaming the password', async () => {
    // The realm pointing back at the registry itself: its own 401 with a Bearer challenge.
    const challenge = { 'www-authenticate': `Bearer realm="${reg.url}/v2/",service="${reg.host}"` };
    for (const explicit of [{}, { [reg.host]: { username: 'alice', password: 'right-or-wrong' } }]) {
      const auth = new RegistryAuth({
        http: http(),
        registry: reg.host,
        credentials: CredentialStore.fromSources({ explicit, dockerConfigPath: null, env: {} }),
      });
      const err = await auth
        .onUnauthorized(challenge, pullScope('library/app'), undefined)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect(err).not.toBeInstanceOf(CredentialRefusedError);
      expect((err as Error).message).toBe(
        `the token realm ${reg.url}/v2/ that ${reg.host} names answered 401 with a Bearer challenge of its own: it is a registry, not a token service, so no credentials can get a token there; check the registry address, or ask its operator to point the realm at its token service`,
      );
    }
  });

  it('gets anonymous token requests, not the HUBCRAWL_DOCKERHUB_* credentials', async () => {
    const from = reg.token!.authorizations.length;
    const credentials = CredentialStore.fromSources({
      dockerConfigPath: null,
      env: { HUBCRAWL_DOCKERHUB_USERNAME: HUB_USER, HUBCRAWL_DOCKERHUB_TOKEN: HUB_PAT },
    });
    const client = new RegistryClient({
      registry: 'docker.io',
      http: http(),
      credentials,
      endpoint: reg.url,
    });
    const head = await client.headManifest('library/app', '1');
    expect(head.digest).toBe(image.digest);
    const sent = sentToTokenService(from);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent).not.toContain(hubBasic);
    expect(sent.every((a) => a === undefined)).toBe(true);
  });

  it('gets no docker login credential for Docker Hub from the Docker config either', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-mirror-'));
    dirs.push(dir);
    const dockerConfigPath = join(dir, 'config.json');
    const auth = Buffer.from(`${HUB_USER}:${HUB_PAT}`).toString('base64');
    writeFileSync(dockerConfigPath, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth } } }));
    const from = reg.token!.authorizations.length;
    const credentials = CredentialStore.fromSources({ dockerConfigPath, env: {} });
    const client = new RegistryClient({
      registry: 'docker.io',
      http: http(),
      credentials,
      endpoint: reg.url,
    });
    expect((await client.headManifest('library/app', '1')).digest).toBe(image.digest);
    expect(sentToTokenService(from).every((a) => a === undefined)).toBe(true);
  });

  it("signs in with the credentials configured for the mirror's own host", async () => {
    const from = reg.token!.authorizations.length;
    const credentials = CredentialStore.fromSources({
      dockerConfigPath: null,
      env: { HUBCRAWL_DOCKERHUB_USERNAME: HUB_USER, HUBCRAWL_DOCKERHUB_TOKEN: HUB_PAT },
      explicit: { [reg.host]: { username: reg.username!, password: reg.password! } },
    });
    const client = new RegistryClient({
      registry: 'docker.io',
      http: http(),
      credentials,
      endpoint: reg.url,
    });
    expect((await client.headManifest('library/app', '1')).digest).toBe(image.digest);
    const mirrorBasic = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
    expect(sentToTokenService(from)).toEqual([mirrorBasic]);
  });

  it('names the mirror, not docker.io, when it refuses the credentials configured for it', async () => {
    const credentials = CredentialStore.fromSources({
      dockerConfigPath: null,
      explicit: { [reg.host]: { username: reg.username!, password: 'wrong-for-the-mirror' } },
    });
    const client = new RegistryClient({
      registry: 'docker.io',
      http: http(),
      credentials,
      endpoint: reg.url,
    });
    const err = await client.headManifest('library/app', '1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialRefusedError);
    expect((err as Error).message).toContain(`refused the username and password for ${reg.host}`);
    expect((err as Error).message).not.toContain('docker.io');
  });
});

describe('a Basic-auth registry given a wrong password', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  const repos = Array.from({ length: 16 }, (_, i) => `basic/r${i}`);
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    for (const r of repos) await pushImage(reg, r, '1', image);
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  const clientWith = (password: string) =>
    new RegistryClient({
      registry: proxy.host,
      http: http(),
      credentials: CredentialStore.fromSources({
        dockerConfigPath: null,
        explicit: { [proxy.host]: { username: reg.username!, password } },
      }),
    });
  const basicSent = () =>
    proxy.log.filter((e) => String(e.headers.authorization ?? '').startsWith('Basic ')).length;

  it('is sent once for 16 requests in flight, and every one of them fails with the refusal', async () => {
    proxy.log.length = 0;
    const client = clientWith('wrong-Pa55word');
    const results = await Promise.all(repos.map((r) => client.headManifest(r, '1').catch((e: unknown) => e)));
    for (const r of results) expect(r).toBeInstanceOf(CredentialRefusedError);
    expect(basicSent()).toBe(1);
    // Later requests do not offer it again either.
    await expect(client.headManifest(repos[0]!, '1')).rejects.toBeInstanceOf(CredentialRefusedError);
    expect(basicSent()).toBe(1);
  });

  it('once accepted, is sent by all 16 requests in flight without waiting on each other', async () => {
    const client = clientWith(reg.password!);
    const heads = await Promise.all(repos.map((r) => client.headManifest(r, '1')));
    expect(heads.map((h) => h.digest)).toEqual(repos.map(() => image.digest));
  });
});
