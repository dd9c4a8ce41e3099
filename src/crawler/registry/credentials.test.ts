import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { type Credential, CredentialStore, normalizeRegistryKey } from './credentials.js';

/** The password of a username-and-password credential. */
const password = (c: Credential | undefined) => (c?.kind === 'basic' ? c.password : undefined);

function dockerConfig(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-creds-'));
  const p = join(dir, 'config.json');
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

describe('CredentialStore', () => {
  it('reads base64 auth entries and maps https://index.docker.io/v1/ to docker.io', () => {
    const path = dockerConfig({
      auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('alice:pa:ss').toString('base64') } },
    });
    const c = CredentialStore.fromSources({ dockerConfigPath: path, env: {} }).get('docker.io');
    expect(c?.username).toBe('alice');
    expect(password(c)).toBe('pa:ss');
  });

  it('reads username/password entries keyed by host:port', () => {
    const path = dockerConfig({ auths: { 'http://127.0.0.1:5000/v2/': { username: 'u', password: 'p' } } });
    expect(password(CredentialStore.fromSources({ dockerConfigPath: path }).get('127.0.0.1:5000'))).toBe('p');
  });

  it('reads an identitytoken entry as an identity token, which wins over a password beside it', () => {
    const path = dockerConfig({
      auths: {
        'registry.example': { auth: Buffer.from('alice:').toString('base64'), identitytoken: 'refresh-1' },
        'other.example': { username: 'bob', password: 'pw', identitytoken: 'refresh-2' },
      },
    });
    const s = CredentialStore.fromSources({ dockerConfigPath: path, env: {} });
    const a = s.get('registry.example');
    const b = s.get('other.example');
    expect(a?.kind === 'identity-token' && [a.username, a.identityToken]).toEqual(['alice', 'refresh-1']);
    expect(b?.kind === 'identity-token' && [b.username, b.identityToken]).toEqual(['bob', 'refresh-2']);
  });

  it('never shows an identity token in JSON, inspect or string form', () => {
    const path = dockerConfig({ auths: { 'registry.example': { identitytoken: 'REFRESHSECRET' } } });
    const c = CredentialStore.fromSources({ dockerConfigPath: path, env: {} }).get('registry.example');
    expect(c?.kind).toBe('identity-token');
    for (const shown of [JSON.stringify(c), inspect(c), String(c)])
      expect(shown).not.toContain('REFRESHSECRET');
  });

  it('treats a missing default Docker config as empty, and refuses a missing one the user named', () => {
    // Looked for where DOCKER_CONFIG (or ~/.docker) says: none there is no error.
    const env = { DOCKER_CONFIG: '/nonexistent' };
    expect(CredentialStore.fromSources({ env }).get('docker.io')).toBeUndefined();
    // Named (--docker-config, dockerConfig): a typo must not crawl anonymously without a word.
    expect(() => CredentialStore.fromSources({ dockerConfigPath: '/nonexistent/config.json' })).toThrowError(
      /^Docker config \/nonexistent\/config\.json does not exist/,
    );
  });

  it('reports a malformed Docker config as a ConfigError', () => {
    expect(() => CredentialStore.fromSources({ dockerConfigPath: dockerConfig('{oops') })).toThrow(
      ConfigError,
    );
  });

  it('reads an empty Docker config file, and /dev/null, as one without credentials, as docker does', () => {
    for (const dockerConfigPath of [dockerConfig(''), dockerConfig(' \n'), '/dev/null']) {
      const s = CredentialStore.fromSources({ dockerConfigPath, env: {} });
      expect(s.get('docker.io')).toBeUndefined();
      expect(s.registries()).toEqual([]);
    }
  });

  for (const [order, keys] of [
    ['exact key first', ['127.0.0.1:5000', 'https://127.0.0.1:5000']],
    ['exact key last', ['https://127.0.0.1:5000', '127.0.0.1:5000']],
  ] as const) {
    it(`takes the entry under the exact host:port key over an https:// one for the same registry (${order})`, () => {
      const entries = { [keys[0]]: {}, [keys[1]]: {} } as Record<
        string,
        { username: string; password: string }
      >;
      for (const k of keys) {
        entries[k] = k.includes('://')
          ? { username: 'stale', password: 'old' }
          : { username: 'good', password: 'new' };
      }
      const path = dockerConfig({ auths: entries });
      const c = CredentialStore.fromSources({ dockerConfigPath: path, env: {} }).get('127.0.0.1:5000');
      expect([c?.username, password(c)]).toEqual(['good', 'new']);
    });
  }

  it('takes https://index.docker.io/v1/, the key docker looks up, over another spelling of Docker Hub', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const path = dockerConfig({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('alice:right') },
        'docker.io': { auth: b64('alice:stale') },
      },
    });
    expect(password(CredentialStore.fromSources({ dockerConfigPath: path, env: {} }).get('docker.io'))).toBe(
      'right',
    );
  });

  for (const [what, auth] of [
    ['no colon', Buffer.from('alice').toString('base64')],
    ['no user name', Buffer.from(':S3cr3t').toString('base64')],
    ['not base64', 'not*base64!'],
    ['base64 without its padding', Buffer.from('alice:pw').toString('base64').replace(/=+$/, '')],
  ] as const) {
    it(`refuses a Docker config whose auth has ${what}, naming the file and the registry key`, () => {
      const path = dockerConfig({ auths: { '127.0.0.1:5000': { auth } } });
      let err: unknown;
      try {
        CredentialStore.fromSources({ dockerConfigPath: path, env: {} });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(
        `Docker config ${path}: auths["127.0.0.1:5000"].auth is not base64`,
      );
      expect(inspect(err, { depth: 5 })).not.toContain('S3cr3t');
    });
  }

  it('prefers env over the Docker config and explicit config over env', () => {
    const path = dockerConfig({ auths: { 'docker.io': { username: 'file', password: 'f' } } });
    const env = { HUBCRAWL_DOCKERHUB_USERNAME: 'env', HUBCRAWL_DOCKERHUB_TOKEN: 'e' };
    expect(CredentialStore.fromSources({ dockerConfigPath: path, env }).get('docker.io')?.username).toBe(
      'env',
    );
    const explicit = { 'index.docker.io': { username: 'cfg', password: 'c' } };
    expect(
      CredentialStore.fromSources({ dockerConfigPath: path, env, explicit }).get('docker.io')?.username,
    ).toBe('cfg');
  });

  it('refuses generic registry env credentials without the host they belong to', () => {
    const env = { HUBCRAWL_REGISTRY_USERNAME: 'g', HUBCRAWL_REGISTRY_PASSWORD: 'p' };
    expect(() => CredentialStore.fromSources({ dockerConfigPath: null, env })).toThrowError(ConfigError);
    expect(() => CredentialStore.fromSources({ dockerConfigPath: null, env })).toThrowError(
      /HUBCRAWL_REGISTRY_HOST/,
    );
  });

  it('refuses half a credential pair from the environment instead of crawling anonymously', () => {
    for (const env of [
      { HUBCRAWL_REGISTRY_HOST: 'r.example:5000', HUBCRAWL_REGISTRY_PASSWORD: 'p' },
      { HUBCRAWL_REGISTRY_HOST: 'r.example:5000', HUBCRAWL_REGISTRY_USERNAME: 'g' },
      { HUBCRAWL_DOCKERHUB_TOKEN: 't' },
      { HUBCRAWL_DOCKERHUB_USERNAME: 'u' },
    ]) {
      expect(() => CredentialStore.fromSources({ dockerConfigPath: null, env })).toThrowError(
        /go together: one of them is not set/,
      );
    }
  });

  it('scopes generic env credentials to HUBCRAWL_REGISTRY_HOST when set', () => {
    const env = {
      HUBCRAWL_REGISTRY_USERNAME: 'g',
      HUBCRAWL_REGISTRY_PASSWORD: 'p',
      HUBCRAWL_REGISTRY_HOST: 'r.example:5000',
    };
    const s = CredentialStore.fromSources({ dockerConfigPath: null, env });
    expect(s.get('r.example:5000')?.username).toBe('g');
    expect(s.get('ghcr.io')).toBeUndefined();
  });

  it('never shows a password in JSON, inspect or string form', () => {
    const s = CredentialStore.fromSources({
      dockerConfigPath: null,
      explicit: { 'x.io': { username: 'u', password: 'SECRET' } },
    });
    const c = s.get('x.io')!;
    expect(JSON.stringify(c)).not.toContain('SECRET');
    expect(inspect(c)).not.toContain('SECRET');
    expect(String(c)).not.toContain('SECRET');
    expect(JSON.stringify(s)).not.toContain('SECRET');
    expect(inspect(s, { depth: 5, showHidden: false })).not.toContain('SECRET');
  });
});

describe('normalizeRegistryKey', () => {
  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['https://GHCR.io', 'ghcr.io'],
    ['localhost:5000/v2/', 'localhost:5000'],
  ])('%s → %s', (k, v) => {
    expect(normalizeRegistryKey(k)).toBe(v);
  });
});
