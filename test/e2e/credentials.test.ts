/**
 * Credentials given by environment reach the registry and nothing else: a crawl of an htpasswd
 * registry succeeds with HUBCRAWL_REGISTRY_USERNAME/PASSWORD, and neither the password nor the Basic
 * header built from it appears in the debug logs, the dataset or any file of the export bundle.
 * The same crawl authenticates through a Docker credential helper named by `credsStore`. An identity
 * token that `docker login` left (in config.json or a helper) pulls a private image from the real
 * registry behind the token service, through the OAuth2 refresh-token grant.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { loginForIdentityToken } from '../../scripts/lib/token-oauth.js';
import { buildCliOnce, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';

let registry: RunningRegistry;
let dir: string;

beforeAll(async () => {
  dir = tempDir('creds');
  const setup = async () => {
    registry = await startRegistry({ auth: 'htpasswd', installIfMissing: true });
    const image = await buildImage({
      layers: [{ entries: debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }) }],
    });
    await pushImage(registry, 'private/app', '1', image);
  };
  await settle(setup(), buildCliOnce());
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  removeTempDirs();
});

function allFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('registry credentials from the environment', () => {
  it('authenticate the crawl and appear in no log line, dataset or exported file', async () => {
    const password = registry.password!;
    const basic = Buffer.from(`${registry.username}:${password}`).toString('base64');
    const db = join(dir, 'private.sqlite');
    const env = {
      HUBCRAWL_REGISTRY_USERNAME: registry.username!,
      HUBCRAWL_REGISTRY_PASSWORD: password,
      HUBCRAWL_REGISTRY_HOST: registry.host,
    };
    const crawl = await runCli(['crawl', '--catalog', registry.url, '--db', db, '--log-level', 'debug'], {
      env,
    });
    expect(crawl.code).toBe(0);
    expect(crawl.stdout).toMatch(
      /^run 1 completed: 1 image, 1 layer analyzed .* 3 findings, 0 failed items\n$/,
    );
    const out = join(dir, 'bundle');
    const exported = await runCli(['export', '--db', db, '--out', out, '--log-level', 'debug'], { env });
    expect(exported.code).toBe(0);

    const files = [...allFiles(out), ...allFiles(dir).filter((f) => f.startsWith(db))];
    expect(files.length).toBeGreaterThan(20);
    const leaks: string[] = [];
    for (const f of files) {
      const bytes = readFileSync(f);
      if (bytes.includes(password) || bytes.includes(basic)) leaks.push(f);
    }
    for (const [name, text] of [
      ['crawl stderr', crawl.stderr],
      ['crawl stdout', crawl.stdout],
      ['export stderr', exported.stderr],
      ['export stdout', exported.stdout],
    ] as const) {
      if (text.includes(password) || text.includes(basic)) leaks.push(name);
    }
    expect(leaks).toEqual([]);
    // The debug log did talk about the requests (so an absent password is not an absent log).
    expect(crawl.stderr.split('\n').filter((l) => l.startsWith('{')).length).toBeGreaterThan(0);
  });
});

describe('registry credentials from a Docker credential helper', () => {
  /** A Docker config naming `credsStore: <name>`, and the helper itself on a PATH of its own. */
  function dockerSetup(name: string, script: string): { config: string; path: string } {
    const home = tempDir(`helper-${name}`);
    const bin = join(home, 'bin');
    mkdirSync(bin);
    const helper = join(bin, `docker-credential-${name}`);
    writeFileSync(helper, `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r url\n${script}\n`);
    chmodSync(helper, 0o755);
    const config = join(home, 'config.json');
    writeFileSync(config, JSON.stringify({ credsStore: name, auths: { [registry.host]: {} } }));
    return { config, path: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  }

  it('authenticate a crawl named by credsStore, without the password reaching the logs', async () => {
    const password = registry.password!;
    const { config, path } = dockerSetup(
      'e2e',
      `[ "$url" = "${registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
        `echo '{"ServerURL":"${registry.host}","Username":"${registry.username}","Secret":"${password}"}'`,
    );
    const db = join(dir, 'helper.sqlite');
    const args = [
      'crawl',
      '--catalog',
      registry.url,
      '--db',
      db,
      '--docker-config',
      config,
      '--log-level',
      'debug',
    ];
    const crawl = await runCli(args, { env: { PATH: path } });
    expect(crawl.code).toBe(0);
    expect(crawl.stdout).toMatch(/^run 1 completed: 1 image, 1 layer analyzed .* 0 failed items\n$/);
    expect(crawl.stderr).not.toContain(password);
  });

  it('ends the run resumably (exit 3) at the first registry needing a helper that is not installed', async () => {
    const { config } = dockerSetup('e2e-gone', 'exit 0');
    const db = join(dir, 'missing-helper.sqlite');
    const crawl = await runCli(['crawl', '--catalog', registry.url, '--db', db, '--docker-config', config]);
    expect(crawl.code).toBe(3);
    expect(crawl.stderr).toMatch(
      /docker-credential-e2e-gone .* is not on PATH; install it, or crawl without/,
    );
  });

  it('ends the run resumably (exit 3) when the helper fails, naming it but quoting none of its output', async () => {
    // What a failing helper prints may hold the secret, so it is never quoted (692bd63).
    const { config, path } = dockerSetup('e2e-locked', 'echo "the keychain is locked: hunter2" >&2; exit 2');
    const db = join(dir, 'failing-helper.sqlite');
    const args = ['crawl', '--catalog', registry.url, '--db', db, '--docker-config', config];
    const crawl = await runCli(args, { env: { PATH: path } });
    expect(crawl.code).toBe(3);
    const said = `${crawl.stdout}${crawl.stderr}`;
    expect(said).toMatch(/docker-credential-e2e-locked \(for 127\.0\.0\.1:\d+\) failed with exit status 2/);
    expect(said).toContain('docker-credential-e2e-locked get` to see its message');
    expect(said).not.toContain('hunter2');
    expect(readFileSync(db).includes('hunter2')).toBe(false);
  });
});

describe('registry credentials from a docker login identity token', () => {
  let tokenRegistry: RunningRegistry;
  let identityToken: string;

  beforeAll(async () => {
    tokenRegistry = await startRegistry({ auth: 'token', installIfMissing: true });
    const image = await buildImage({
      layers: [{ entries: debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }) }],
    });
    await pushImage(tokenRegistry, 'private/app', '1', image);
    // A private repository: an anonymous token grants nothing, so only the login pulls.
    tokenRegistry.token!.setAnonymousPull(false);
    // What docker login does against a token service that issues identity tokens.
    identityToken = await loginForIdentityToken({
      realm: tokenRegistry.token!.realm,
      service: tokenRegistry.token!.service,
      username: tokenRegistry.username!,
      password: tokenRegistry.password!,
    });
  }, 180_000);

  afterAll(async () => {
    await tokenRegistry?.stop();
  });

  /** Crawls the private image with `config` as the Docker config; the token service's grants of that crawl. */
  async function crawlPrivate(name: string, config: unknown, env: Record<string, string> = {}) {
    const home = tempDir(`idtoken-${name}`);
    const configPath = join(home, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    const db = join(home, 'crawl.sqlite');
    const image = `${tokenRegistry.host}/private/app:1`;
    const svc = tokenRegistry.token!;
    const n = svc.grants.length;
    const args = [
      'crawl',
      '--image',
      image,
      '--db',
      db,
      '--docker-config',
      configPath,
      '--log-level',
      'debug',
    ];
    // Async: the token service answers from this process while the CLI runs.
    const result = await runCli(args, { env });
    return { ...result, grants: svc.grants.slice(n) };
  }

  it('cannot pull the private image without a login, so the pulls below are the identity token doing it', async () => {
    const crawl = await crawlPrivate('anonymous', {});
    expect(crawl.code).toBe(1);
    expect(crawl.stdout).toMatch(/1 failed items?\n$/);
    expect(new Set(crawl.grants)).toEqual(new Set(['get']));
  });

  it('pulls a private image with the identitytoken of config.json, and logs the token nowhere', async () => {
    const auth = Buffer.from(`${tokenRegistry.username}:`).toString('base64');
    const crawl = await crawlPrivate('config', {
      auths: { [tokenRegistry.host]: { auth, identitytoken: identityToken } },
    });
    expect(crawl.code).toBe(0);
    expect(crawl.stdout).toMatch(/^run 1 completed: 1 image, 1 layer analyzed .* 0 failed items\n$/);
    expect(crawl.grants.length).toBeGreaterThan(0);
    expect(new Set(crawl.grants)).toEqual(new Set(['refresh_token']));
    expect(`${crawl.stdout}${crawl.stderr}`).not.toContain(identityToken);
  });

  it('pulls a private image with the identity token a credential helper hands out as <token>', async () => {
    const home = tempDir('idtoken-helper-bin');
    const helper = join(home, 'docker-credential-idtoken');
    writeFileSync(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r url\n` +
        `[ "$url" = "${tokenRegistry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
        `echo '{"ServerURL":"${tokenRegistry.host}","Username":"<token>","Secret":"${identityToken}"}'\n`,
    );
    chmodSync(helper, 0o755);
    const crawl = await crawlPrivate(
      'helper',
      { credsStore: 'idtoken' },
      { PATH: `${home}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    );
    expect(crawl.code).toBe(0);
    expect(crawl.stdout).toMatch(/^run 1 completed: 1 image, 1 layer analyzed .* 0 failed items\n$/);
    expect(new Set(crawl.grants)).toEqual(new Set(['refresh_token']));
    expect(crawl.stderr).not.toContain(identityToken);
  });

  it('fails the image with a clear error when the token service refuses the identity token', async () => {
    const crawl = await crawlPrivate('refused', {
      auths: { [tokenRegistry.host]: { identitytoken: 'revoked-identity-token' } },
    });
    expect(crawl.code).toBe(1);
    expect(crawl.stdout).toMatch(/1 failed items?\n$/);
    expect(crawl.stderr).toContain(
      `refused the identity token for ${tokenRegistry.host} (expired or revoked); run \`docker login ${tokenRegistry.host}\` again`,
    );
    // Refused once, not again for every request of the crawl.
    expect(crawl.grants).toEqual(['refresh_token']);
    expect(crawl.stderr).not.toContain('revoked-identity-token');
  });
});
