import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, FatalError } from '../../core/errors.js';
import { hubCredentialsFromStore } from '../hub/auth.js';
import { type Credential, CredentialStore } from './credentials.js';

/** The password of a username-and-password credential. */
const password = (c: Credential | undefined) => (c?.kind === 'basic' ? c.password : undefined);

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
    expect(password(creds.get('registry-1.docker.io'))).toBe('s3cret');
    expect(creds.get('docker.io')?.username).toBe('alice');
    expect(asked()).toEqual(['vault https://index.docker.io/v1/']);
  });

  it('prefers the credHelpers entry of a registry over credsStore, which serves the others', () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['alice', 'hub-pw'] });
    keychain('ecr', { '127.0.0.1:5000': ['AWS', 'ecr-pw'] });
    const creds = store({ credsStore: 'vault', credHelpers: { '127.0.0.1:5000': 'ecr' } });
    expect(password(creds.get('127.0.0.1:5000'))).toBe('ecr-pw');
    expect(password(creds.get('docker.io'))).toBe('hub-pw');
    expect(asked()).toEqual(['ecr 127.0.0.1:5000', 'vault https://index.docker.io/v1/']);
  });

  it('crawls anonymously where the helper holds nothing, as docker does, without falling back to auths', () => {
    keychain('vault', {});
    const auth = Buffer.from('bob:old-pw').toString('base64');
    const creds = store({ credsStore: 'vault', auths: { 'quay.io': { auth } } });
    expect(creds.get('quay.io')).toBeUndefined();
    expect(creds.get('ghcr.io')).toBeUndefined();
    expect(asked()).toEqual(['vault quay.io', 'vault ghcr.io']);
  });

  it('reads auths for a registry whose credHelpers entry is empty, without asking credsStore', () => {
    keychain('vault', {});
    const auth = Buffer.from('bob:file-pw').toString('base64');
    const creds = store({
      credsStore: 'vault',
      credHelpers: { 'quay.io': '' },
      auths: { 'quay.io': { auth } },
    });
    expect(password(creds.get('quay.io'))).toBe('file-pw');
    expect(asked()).toEqual([]);
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

  it('stops the run (FatalError) at the first registry that needs a helper which is not installed, saying how to go on', () => {
    const creds = store({ credsStore: 'not-installed-desktop' });
    expect(() => creds.get('docker.io')).toThrow(FatalError);
    expect(() => creds.get('docker.io')).toThrow(
      /docker-credential-not-installed-desktop .* is not on PATH; install it, or crawl without .*dockerConfig: null/,
    );
  });

  it('lets a crawl whose registries have credentials from elsewhere run despite a missing helper', () => {
    const creds = store(
      { credsStore: 'not-installed-desktop' },
      { env: { HUBCRAWL_DOCKERHUB_USERNAME: 'carol', HUBCRAWL_DOCKERHUB_TOKEN: 'pat' } },
    );
    expect(creds.get('docker.io')?.username).toBe('carol');
  });

  it('refuses a helper name that is a path, so a config file cannot run an arbitrary program', () => {
    helper('x', 'exit 0');
    expect(() => store({ credsStore: '../../bin/sh' })).toThrow(ConfigError);
    expect(() => store({ credHelpers: { 'gcr.io': 'a/b' } })).toThrow(
      /credHelpers\["gcr.io"\] "a\/b" is not a credential helper name/,
    );
  });

  it('stops the run with FatalError when the helper fails, naming its exit status and how to run it by hand, and runs it once', () => {
    helper('broken', 'echo "keychain is locked" >&2; exit 2');
    const creds = store({ credsStore: 'broken' });
    expect(() => creds.get('docker.io')).toThrow(FatalError);
    expect(() => creds.get('registry-1.docker.io')).toThrow(
      /failed with exit status 2 .*run `echo https:\/\/index.docker.io\/v1\/ \| docker-credential-broken get` to see its message/,
    );
    expect(asked()).toEqual(['broken https://index.docker.io/v1/']);
  });

  it("quotes nothing of a failing helper's stderr, even a line with no credential-like word in it", () => {
    helper('keyring', 'echo "could not unlock keyring for alice with S3cr3t-P4ss-xyzzy" >&2; exit 1');
    const err = (() => {
      try {
        store({ credHelpers: { '127.0.0.1:5000': 'keyring' } }).get('127.0.0.1:5000');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(FatalError);
    expect(err?.message).toMatch(
      /docker-credential-keyring \(for 127.0.0.1:5000\) failed with exit status 1/,
    );
    expect(inspect(err, { depth: 10 })).not.toMatch(/S3cr3t|keyring for|alice/);
  });

  it('keeps the secret out of the error when a helper prints its credential and then fails', () => {
    helper(
      'wrapper',
      `echo '{"ServerURL":"x","Username":"alice","Secret":"TOPSECRET"}'; echo '{"Secret":"TOPSECRET"}' >&2; exit 2`,
    );
    const err = (() => {
      try {
        store({ credsStore: 'wrapper' }).get('docker.io');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(FatalError);
    expect(err?.message).toMatch(/exit status 2 \(its output is not quoted/);
    expect(inspect(err, { depth: 10 })).not.toContain('TOPSECRET');
  });

  it('names a helper killed by a signal and one printing too much, rather than calling them slow', () => {
    helper('crash', 'kill -SEGV $$');
    expect(() => store({ credsStore: 'crash' }).get('docker.io')).toThrow(/was killed by SIGSEGV/);
    helper('chatty', 'head -c 100000 /dev/zero | tr "\\0" x');
    expect(() => store({ credsStore: 'chatty' }).get('docker.io')).toThrow(/printed more than 65536 bytes/);
  });

  it('treats only the exact not-found answer on stdout as "no credential"', () => {
    helper('vague', 'echo "credentials not found: the keychain daemon is down" >&2; exit 1');
    expect(() => store({ credsStore: 'vague' }).get('docker.io')).toThrow(FatalError);
  });

  it("does not hand hubcrawl's own secrets to a helper", () => {
    helper('env', 'env > "$(dirname "$0")/env.txt"; echo "credentials not found in native keychain"; exit 1');
    const env = {
      HUBCRAWL_REGISTRY_HOST: 'a.example',
      HUBCRAWL_REGISTRY_USERNAME: 'u',
      HUBCRAWL_REGISTRY_PASSWORD: 'registry-a-pw',
      KEYRING_SESSION: 'kept',
    };
    expect(store({ credsStore: 'env' }, { env }).get('b.example')).toBeUndefined();
    const seen = readFileSync(join(bin, 'env.txt'), 'utf8');
    expect(seen).toContain('KEYRING_SESSION=kept');
    expect(seen).not.toContain('registry-a-pw');
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

  it('hands out a <token> answer as an identity token, which signs in to the registry but not the Hub web API', () => {
    keychain('vault', { 'https://index.docker.io/v1/': ['<token>', 'refresh-token'] });
    const creds = store({ credsStore: 'vault' });
    const c = creds.get('docker.io');
    expect(c?.kind === 'identity-token' && [c.username, c.identityToken]).toEqual([
      undefined,
      'refresh-token',
    ]);
    expect(JSON.stringify(c)).not.toContain('refresh-token');
    expect(hubCredentialsFromStore(creds, 'https://hub.docker.com')).toBeUndefined();
  });

  it('gives up on a helper that does not answer in time', () => {
    helper('slow', 'sleep 5');
    const creds = store({ credsStore: 'slow' }, { timeoutMs: 200 });
    expect(() => creds.get('docker.io')).toThrow(/did not answer within 0.2 s/);
  });
});
