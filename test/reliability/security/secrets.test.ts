/**
 * Credentials and tokens never leave the process: crawls with the real CLI against the real
 * htpasswd and token registries (behind recording fault proxies, whose logs give us the exact
 * Authorization values sent: the Basic string and every issued Bearer token), at --log-level trace,
 * then the logs, every table and the raw bytes of the dataset, an `export` folder, and the messages
 * of a failing login are searched for the password, the Basic string and the tokens.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';
import { pushImage } from '../hostile/harness.js';
import { datasetText, folderText, leaks, runCli } from './cli-run.js';

const regs = inject('registries');
const USER = regs.htpasswd.username!;
const PASSWORD = regs.htpasswd.password!;
const WRONG = 'wrong-Pa55word-that-must-not-leak';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let work: string;
let image: BuiltImage;
let basicProxy: FaultProxy;
let tokenProxy: FaultProxy;
let hub: FakeHub;
const HUB_USER = 'researcher';
const HUB_PAT = 'dckr_pat_SECRET-personal-access-token-0123456789';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'hubcrawl-secrets-'));
  image = await buildImage({
    layers: [{ entries: [{ type: 'file', path: 'etc/os-release', content: 'ID=debian\n' }] }],
  });
  for (const r of [regs.htpasswd, regs.token, regs.none]) await pushImage(r, 'secrets/app', '1', image);
  hub = await startFakeHub({
    anonymousOffsetCap: null,
    users: { [HUB_USER]: HUB_PAT },
    repos: [{ namespace: 'secrets', name: 'app', tags: [fakeHubTagFor('1', image)] }],
  });
  basicProxy = await startFaultProxy(regs.htpasswd.url);
  tokenProxy = await startFaultProxy(regs.token.url);
});

afterAll(async () => {
  await Promise.allSettled([basicProxy?.stop(), tokenProxy?.stop(), hub?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Authorization values the proxy saw, split into the whole header and the credential part. */
function sentSecrets(proxy: FaultProxy): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of proxy.log) {
    const a = e.headers.authorization;
    if (typeof a !== 'string') continue;
    const value = a.slice(a.indexOf(' ') + 1);
    out[`sent ${a.slice(0, 12)}…`] = value;
    // A JWT's signature alone identifies it; catch a token logged in part.
    const sig = value.split('.')[2];
    if (sig && sig.length > 20) out[`token signature ${sig.slice(0, 8)}…`] = sig;
  }
  return out;
}

/** Crawls `ref` with the CLI, then exports; returns everything written and the db path. */
async function crawlAndExport(name: string, args: string[], env: Record<string, string>) {
  const db = join(work, `${name}.sqlite`);
  const crawl = await runCli(['crawl', '--db', db, '--log-level', 'trace', ...args], env);
  const out = join(work, `${name}-export`);
  const exp = await runCli(['export', '--db', db, '--out', out, '--log-level', 'trace'], env);
  expect(exp.code).toBe(0);
  return { crawl, exp, db, out };
}

const analyzedImages = (db: string) => datasetText(db).includes(image.digest);

describe('secrets stay out of logs, the dataset, exports and errors', () => {
  it('leaks neither the password nor the Basic string of env credentials for an htpasswd registry', async () => {
    basicProxy.log.length = 0;
    const r = await crawlAndExport('basic-env', ['--image', `${basicProxy.host}/secrets/app:1`], {
      HUBCRAWL_REGISTRY_USERNAME: USER,
      HUBCRAWL_REGISTRY_PASSWORD: PASSWORD,
      HUBCRAWL_REGISTRY_HOST: basicProxy.host,
    });
    expect(r.crawl.code, r.crawl.stderr.slice(-2000)).toBe(0);
    expect(analyzedImages(r.db)).toBe(true);
    const secrets = { password: PASSWORD, basic: b64(`${USER}:${PASSWORD}`), ...sentSecrets(basicProxy) };
    // The proxy saw the Basic header, so the search below is for a value that was really in play.
    expect(Object.values(secrets)).toContain(b64(`${USER}:${PASSWORD}`));
    expect(r.crawl.stderr).toMatch(/crawl run ended/); // the JSON logs were captured
    expect(leaks(r.crawl.stderr + r.crawl.stdout + r.exp.stderr + r.exp.stdout, secrets)).toEqual([]);
    expect(leaks(datasetText(r.db), secrets)).toEqual([]);
    expect(leaks(folderText(r.out), secrets)).toEqual([]);
  });

  it('leaks neither the password nor any issued token with a DOCKER_CONFIG login for a token registry', async () => {
    tokenProxy.log.length = 0;
    const dockerConfig = join(work, 'docker-config');
    rmSync(dockerConfig, { recursive: true, force: true });
    const auth = b64(`${USER}:${PASSWORD}`);
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(
      join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { [tokenProxy.host]: { auth } } }),
    );
    const r = await crawlAndExport('token-docker-config', ['--image', `${tokenProxy.host}/secrets/app:1`], {
      DOCKER_CONFIG: dockerConfig,
    });
    expect(r.crawl.code, r.crawl.stderr.slice(-2000)).toBe(0);
    expect(analyzedImages(r.db)).toBe(true);
    const sent = sentSecrets(tokenProxy);
    expect(Object.keys(sent).some((k) => k.startsWith('token signature'))).toBe(true);
    const secrets = { password: PASSWORD, basic: auth, ...sent };
    expect(leaks(r.crawl.stderr + r.crawl.stdout + r.exp.stderr + r.exp.stdout, secrets)).toEqual([]);
    expect(leaks(datasetText(r.db), secrets)).toEqual([]);
    expect(leaks(folderText(r.out), secrets)).toEqual([]);
  });

  it('keeps a password from the config file out of the run record and the export', async () => {
    const configFile = join(work, 'with-password.yaml');
    writeFileSync(
      configFile,
      `registries:\n  "${basicProxy.host}":\n    username: ${USER}\n    password: ${PASSWORD}\n`,
    );
    const r = await crawlAndExport(
      'config-file',
      ['--config', configFile, '--image', `${basicProxy.host}/secrets/app:1`],
      {},
    );
    expect(r.crawl.code, r.crawl.stderr.slice(-2000)).toBe(0);
    expect(analyzedImages(r.db)).toBe(true);
    const secrets = { password: PASSWORD, basic: b64(`${USER}:${PASSWORD}`) };
    expect(leaks(r.crawl.stderr + r.crawl.stdout, secrets)).toEqual([]);
    expect(leaks(datasetText(r.db), secrets)).toEqual([]);
    expect(leaks(folderText(r.out), secrets)).toEqual([]);
  });

  it('leaks neither the Docker Hub personal access token nor the Hub access tokens it was issued', async () => {
    const r = await crawlAndExport(
      'hub-login',
      ['--namespace', 'secrets', '--hub-api', hub.url, '--registry-mirror', regs.none.url],
      { HUBCRAWL_DOCKERHUB_USERNAME: HUB_USER, HUBCRAWL_DOCKERHUB_TOKEN: HUB_PAT },
    );
    expect(r.crawl.code, r.crawl.stderr.slice(-2000)).toBe(0);
    expect(analyzedImages(r.db)).toBe(true);
    // The crawl signed in and used what it was given.
    expect(hub.issuedTokens.length).toBeGreaterThan(0);
    expect(hub.requests.some((q) => q.authorization?.startsWith('Bearer '))).toBe(true);
    const secrets: Record<string, string> = { pat: HUB_PAT, basic: b64(`${HUB_USER}:${HUB_PAT}`) };
    hub.issuedTokens.forEach((t, i) => {
      secrets[`hub token ${i}`] = t;
      secrets[`hub token ${i} signature`] = t.split('.')[2] ?? t;
    });
    expect(leaks(r.crawl.stderr + r.crawl.stdout + r.exp.stderr + r.exp.stdout, secrets)).toEqual([]);
    expect(leaks(datasetText(r.db), secrets)).toEqual([]);
    expect(leaks(folderText(r.out), secrets)).toEqual([]);
  });

  for (const flavour of ['htpasswd', 'token'] as const) {
    it(`names the failed login without the wrong password when the ${flavour} registry refuses it`, async () => {
      const proxy = flavour === 'htpasswd' ? basicProxy : tokenProxy;
      const db = join(work, `wrong-${flavour}.sqlite`);
      const r = await runCli(
        ['crawl', '--db', db, '--log-level', 'trace', '--image', `${proxy.host}/secrets/app:1`],
        {
          HUBCRAWL_REGISTRY_USERNAME: USER,
          HUBCRAWL_REGISTRY_PASSWORD: WRONG,
          HUBCRAWL_REGISTRY_HOST: proxy.host,
        },
      );
      expect(r.code).toBe(1);
      const failed = datasetText(db);
      expect(failed).toMatch(/"error_code":"AUTH"/);
      const secrets = { wrong: WRONG, basic: b64(`${USER}:${WRONG}`) };
      expect(leaks(r.stderr + r.stdout, secrets)).toEqual([]);
      expect(leaks(failed, secrets)).toEqual([]);
    });
  }
});
