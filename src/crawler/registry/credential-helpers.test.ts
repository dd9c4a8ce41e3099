import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, FatalError } from '../../core/errors.js';
import { CredentialStore } from './credentials.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let bin: string;
let calls: string;

/**
 * A docker-credential-<name> program following the helpers' protocol: it logs the server URL it
 * was asked for, then runs `body` with that URL in $url.
 */
function helper(name: string, body: string): void {
  const path = join(bin, `docker-credential-${name}`);
  writeFileSync(
    path,
    `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r url\necho "${name} $url" >> "${calls}"\n${body}\n`,
  );
  chmodSync(path, 0o755);
}

/** A helper that holds `secrets` (server URL → [username, secret]) and nothing else. */
function keychain(name: string, secrets: Record<string, [string, string]>): void {
  const cases = Object.entries(secrets)
    .map(([url, [u, s]]) => `  '${url}') echo '{"ServerURL":"${url}","Username":"${u}","Secret":"${s}"}' ;;`)
    .join('\n');
  helper(
    name,
    `case "$url" in\n${cases}\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac`,
  );
}

function store(config: unknown, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const path = join(bin, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  return CredentialStore.fromSources({
    dockerConfigPath: path,
    env: { PATH: `${bin}:/usr/bin:/bin`, ...opts.env },
    ...(opts.timeoutMs !== undefined ? { helperTimeoutMs: opts.timeoutMs } : {}),
  });
}

const asked = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean);

beforeEach(() => {
  bin = mkdtempSync(join(tmpdir(), 'hubcrawl-helpers-'));
  dirs.push(bin);
  calls = join(bin, 'calls.log');
  writeFileSync(calls, '');
});

describe('credential helpers', () => {
  it('asks the credsStore helper for Docker Hub under the v1 index URL, once per registry', () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['alice', 's3cret'] });
    const creds = store({ credsStore: 'vault', auths: { 'https://index.docker.io/v1/': {} } });
    expect(creds.get('registry-1.docker.io')?.password).toBe('s3cret');
    expect(creds.get('docker.io')?.username).toBe('alice');
    expect(asked()).toEqual(['vault https://index.docker.io/v1/']);
  });

  it('prefers the credHelpers entry of a registry over credsStore, which serves the others', () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['alice', 'hub-pw'] });
    keychain('ecr', { '127.0.0.1:5000': ['AWS', 'ecr-pw'] });
    const creds = store({ credsStore: 'vault', credHelpers: { '127.0.0.1:5000': 'ecr' } });
    expect(creds.get('127.0.0.1:5000')?.password).toBe('ecr-pw');
    expect(creds.get('docker.io')?.password).toBe('hub-pw');
    expect(asked()).toEqual(['ecr 127.0.0.1:5000', 'vault https://index.docker.io/v1/']);
  });

  it('falls back to auths, then to anonymous, when the helper holds no credential', () => {
    keychain('vault', {});
    const auth = Buffer.from('bob:old-pw').toString('base64');
    const creds = store({ credsStore: 'vault', auths: { 'quay.io': { auth } } });
    expect(creds.get('quay.io')?.password).toBe('old-pw');
    expect(creds.get('ghcr.io')).toBeUndefined();
    expect(asked()).toEqual(['vault quay.io', 'vault ghcr.io']);
  });

  it('does not run a helper for a registry whose credential comes from the environment', () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['alice', 'hub-pw'] });
    const creds = store(
      { credsStore: 'vault' },
      { env: { HUBCRAWL_DOCKERHUB_USERNAME: 'carol', HUBCRAWL_DOCKERHUB_TOKEN: 'pat' } },
    );
    expect(creds.get('docker.io')?.username).toBe('carol');
    expect(asked()).toEqual([]);
  });

  it("keeps a helper's secret out of JSON, inspect and the store's own listing", () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['alice', 'hub-pw'] });
    const creds = store({ credsStore: 'vault', credHelpers: { 'gcr.io': 'vault' } });
    const cred = creds.get('docker.io');
    expect(JSON.stringify(cred)).not.toContain('hub-pw');
    expect(JSON.stringify(creds)).toBe('{"registries":["gcr.io","*"]}');
  });

  it('refuses at start, with a ConfigError saying how to crawl without it, a helper that is not on PATH', () => {
    expect(() => store({ credsStore: 'not-installed-desktop' })).toThrow(ConfigError);
    expect(() => store({ credsStore: 'not-installed-desktop' })).toThrow(
      /docker-credential-not-installed-desktop is not on PATH; install it, or crawl without .*dockerConfig: null/,
    );
    expect(() => store({ credHelpers: { 'gcr.io': 'not-installed-here' } })).toThrow(/credHelpers\["gcr.io"\]/);
  });

  it('refuses a helper name that is a path, so a config file cannot run an arbitrary program', () => {
    helper('x', 'exit 0');
    expect(() => store({ credsStore: '../../bin/sh' })).toThrow(/is not a credential helper name/);
  });

  it('stops the run with FatalError when the helper fails, quoting its first line', () => {
    helper('broken', 'echo "keychain is locked" >&2; exit 2');
    const creds = store({ credsStore: 'broken' });
    expect(() => creds.get('docker.io')).toThrow(FatalError);
    expect(() => creds.get('docker.io')).toThrow(/exit status 2: keychain is locked/);
  });

  it('never quotes output that is not a credential, which may hold a secret', () => {
    helper('odd', 'echo "{\\"user\\": \\"alice\\", \\"password\\": \\"hunter2\\"}"');
    const err = (() => {
      try {
        store({ credsStore: 'odd' }).get('docker.io');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(FatalError);
    expect(err?.message).toMatch(/printed something other than a credential/);
    expect(`${err?.message} ${String(err?.cause)}`).not.toContain('hunter2');
  });

  it('refuses an identity token, which only Docker login flows can use', () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['<token>', 'refresh-token'] });
    expect(() => store({ credsStore: 'vault' }).get('docker.io')).toThrow(/identity token/);
  });

  it('gives up on a helper that does not answer in time', () => {
    helper('slow', 'sleep 5');
    const creds = store({ credsStore: 'slow' }, { timeoutMs: 200 });
    expect(() => creds.get('docker.io')).toThrow(/did not answer within 0.2 s/);
  });
});
