/**
 * A Docker-Hub-like token service on loopback that the real registry's `auth.token` mode trusts.
 *
 * At start it makes a throwaway RSA key and a self-signed certificate (openssl CLI); the
 * registry gets the certificate as its `rootcertbundle`. Tokens are RS256 JWTs whose header
 * carries `x5c: [<that certificate>]`: distribution 2.8 verifies the chain against the bundle
 * and then the signature with the leaf's key (it also accepts a libtrust `kid`, which we add
 * as well so either lookup path works).
 *
 * Besides the token GET (anonymous, or Basic with the configured user) it takes the OAuth2 `POST`
 * of a real token server (token-oauth.ts): the password grant that gives `docker login` an identity
 * token, and the refresh-token grant that trades one for access tokens.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decideGrant, readForm } from './token-oauth.js';

export interface TokenServiceHandle {
  realm: string;
  service: string;
  requests: number;
  issued: number;
  setDown(down: boolean): void;
  setExpiresIn(sec: number): void;
  stop(): Promise<void>;
}

export interface StartedTokenService extends TokenServiceHandle {
  rootCertPath: string;
  issuer: string;
  /** Authorization header of every request received (undefined when absent), in order. */
  authorizations: Array<string | undefined>;
  /** Scopes requested, in order (one entry per request, space-joined when several). */
  scopes: string[];
  /** How each request asked: `get`, or the `grant_type` of a POST (`refresh_token`, `password`…), in order. */
  grants: string[];
  /**
   * Whether anonymous callers may pull (default true, as on Docker Hub). Off, they get tokens without
   * access, as for a private repository: only a login pulls.
   */
  setAnonymousPull(allowed: boolean): void;
}

export const TOKEN_SERVICE_NAME = 'hubcrawl-test-registry';
export const TOKEN_ISSUER = 'hubcrawl-test-token-issuer';

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** libtrust key id: base32(sha256(DER SPKI)[:30]) in 12 colon-separated groups of 4. */
export function libtrustKeyId(spkiDer: Buffer): string {
  const hash = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)?.join(':') ?? out;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** Parses `repository:<name>:pull,push` (names may contain ':' only before the last one). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

type Send = (status: number, body: unknown, headers?: Record<string, string>) => void;

function checkBasic(header: string | undefined, username: string, password: string): 'ok' | 'bad' | 'absent' {
  if (!header) return 'absent';
  const m = /^Basic\s+(.+)$/i.exec(header);
  if (!m?.[1]) return 'bad';
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  return decoded === `${username}:${password}` ? 'ok' : 'bad';
}

/** Starts the token service; `certDir` receives the key and certificate. */
export async function startTokenService(opts: {
  username: string;
  password: string;
  expiresInSec?: number;
  certDir: string;
}): Promise<StartedTokenService> {
  mkdirSync(opts.certDir, { recursive: true });
  const keyPath = join(opts.certDir, 'token.key');
  const rootCertPath = join(opts.certDir, 'token.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '3650',
      '-keyout',
      keyPath,
      '-out',
      rootCertPath,
      '-subj',
      '/CN=hubcrawl test token signer',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const privateKey = createPrivateKey(readFileSync(keyPath));
  const certPem = readFileSync(rootCertPath, 'utf8');
  const certDerB64 = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const kid = libtrustKeyId(spki);

  let down = false;
  let expiresInSec = opts.expiresInSec ?? 300;
  let anonymousPull = true;

  const mint = (subject: string, access: Access[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', kid, x5c: [certDerB64] };
    const claims = {
      iss: TOKEN_ISSUER,
      sub: subject,
      aud: TOKEN_SERVICE_NAME,
      exp: now + expiresInSec,
      // Allow for clock skew between us and the registry (same host, but be generous).
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${signingInput}.${b64url(sign('sha256', Buffer.from(signingInput), privateKey))}`;
  };

  /** Like Docker Hub: anonymous callers get pull only (or nothing); the configured user gets what it asks for. */
  const grantAccess = (scopes: string[], asUser: boolean): Access[] => {
    const granted: Access[] = [];
    for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
      const a = parseScope(s);
      if (a?.type !== 'repository') continue;
      const anonymous = anonymousPull ? a.actions.filter((x) => x === 'pull') : [];
      granted.push({ ...a, actions: asUser ? a.actions : anonymous });
    }
    return granted;
  };
  const refreshTokens = new Map<string, string>();

  /** The OAuth2 grants; their answer carries `access_token` (and `scope`, as oauth.md requires). */
  const handlePost = async (req: IncomingMessage, url: URL, send: Send): Promise<void> => {
    const form = await readForm(req);
    state.grants.push(form?.get('grant_type') ?? '');
    state.scopes.push(form?.get('scope') ?? '');
    if (unavailable(url, send)) return;
    if (form === undefined) {
      send(400, { error: 'invalid_request', error_description: 'expected a url-encoded form' });
      return;
    }
    const ctx = {
      service: TOKEN_SERVICE_NAME,
      username: opts.username,
      password: opts.password,
      refreshTokens,
    };
    const decided = decideGrant(form, ctx);
    if ('status' in decided) {
      send(decided.status, decided.body);
      return;
    }
    const scope = form.get('scope') ?? '';
    const token = mint(decided.subject, grantAccess([scope], true));
    state.issued++;
    const refresh = decided.refreshToken !== undefined ? { refresh_token: decided.refreshToken } : {};
    send(200, { access_token: token, expires_in: expiresInSec, scope, ...refresh });
  };

  /** Answers 503 while set down and 404 off the token path; true when it did. */
  const unavailable = (url: URL, send: Send): boolean => {
    if (down) send(503, { details: 'token service is down (test)' });
    else if (url.pathname !== '/token') send(404, { details: 'not found' });
    else return false;
    return true;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    state.requests++;
    const auth = req.headers.authorization;
    state.authorizations.push(auth);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send: Send = (status, body, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'POST') {
      handlePost(req, url, send).catch(() => send(500, { details: 'token service failed (test)' }));
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    state.scopes.push(scopes.join(' '));
    state.grants.push('get');
    if (unavailable(url, send)) return;
    if (url.searchParams.get('service') !== TOKEN_SERVICE_NAME) {
      send(400, { details: `unknown service ${url.searchParams.get('service')}` });
      return;
    }
    const basic = checkBasic(auth, opts.username, opts.password);
    if (basic === 'bad') {
      send(401, { details: 'incorrect username or password' }, { 'www-authenticate': 'Basic realm="token"' });
      return;
    }
    const token = mint(basic === 'ok' ? opts.username : '', grantAccess(scopes, basic === 'ok'));
    state.issued++;
    send(200, { token, access_token: token, expires_in: expiresInSec, issued_at: new Date().toISOString() });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const state: StartedTokenService = {
    realm: `http://127.0.0.1:${port}/token`,
    service: TOKEN_SERVICE_NAME,
    issuer: TOKEN_ISSUER,
    rootCertPath,
    requests: 0,
    issued: 0,
    authorizations: [],
    scopes: [],
    grants: [],
    setDown(d: boolean) {
      down = d;
    },
    setExpiresIn(sec: number) {
      expiresInSec = sec;
    },
    setAnonymousPull(allowed: boolean) {
      anonymousPull = allowed;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return state;
}
