/**
 * Pushes built images into a registry over the distribution API (the same wire protocol the
 * crawler reads): monolithic blob uploads (POST then PUT ?digest=), HEAD to skip existing blobs,
 * manifests PUT with their media type. Handles anonymous, Basic and Bearer-token registries.
 */
import type { BuiltBlob, BuiltImage, BuiltIndex } from './image-builder.js';

/** The part of a RunningRegistry that pushing needs (a RunningRegistry fits). */
export interface PushTarget {
  url: string;
  username?: string;
  password?: string;
}

/** Parses `Bearer realm="…",service="…",scope="…"` into its scheme and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) {
    if (m[1] && m[2] !== undefined) params[m[1].toLowerCase()] = m[2];
  }
  return { scheme, params };
}

const basicHeader = (t: PushTarget): string | undefined =>
  t.username !== undefined
    ? `Basic ${Buffer.from(`${t.username}:${t.password ?? ''}`).toString('base64')}`
    : undefined;

// Per (registry, repository) Authorization value that worked last time.
const authCache = new Map<string, string>();

async function fetchToken(
  t: PushTarget,
  challenge: Record<string, string>,
  repository: string,
): Promise<string> {
  const realm = challenge.realm;
  if (!realm) throw new Error(`Bearer challenge without realm from ${t.url}`);
  const u = new URL(realm);
  if (challenge.service) u.searchParams.set('service', challenge.service);
  u.searchParams.set('scope', `repository:${repository}:pull,push`);
  const basic = basicHeader(t);
  const res = await fetch(u, { headers: basic ? { authorization: basic } : {} });
  if (!res.ok)
    throw new Error(`token request to ${u.origin}${u.pathname} failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error(`token response from ${u.origin} has no token`);
  return `Bearer ${token}`;
}

/** fetch with registry auth: answers a 401 challenge once (Basic or Bearer) and caches what worked. */
export async function registryFetch(
  t: PushTarget,
  repository: string,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: Buffer },
): Promise<Response> {
  const key = `${t.url} ${repository}`;
  const send = (authorization: string | undefined): Promise<Response> =>
    fetch(url, {
      method: init.method,
      headers: { ...init.headers, ...(authorization ? { authorization } : {}) },
      ...(init.body ? { body: init.body } : {}),
      redirect: 'manual',
    });
  let res = await send(authCache.get(key));
  if (res.status !== 401) return res;
  const header = res.headers.get('www-authenticate');
  await res.arrayBuffer();
  if (!header) throw new Error(`401 without WWW-Authenticate from ${url}`);
  const { scheme, params } = parseChallenge(header);
  let authorization: string | undefined;
  if (scheme === 'basic') authorization = basicHeader(t);
  else if (scheme === 'bearer') authorization = await fetchToken(t, params, repository);
  if (!authorization) throw new Error(`registry ${t.url} wants ${scheme} auth and no credentials were given`);
  res = await send(authorization);
  if (res.status !== 401) authCache.set(key, authorization);
  return res;
}

async function expectOk(res: Response, what: string, ...ok: number[]): Promise<Response> {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

/** Uploads one blob unless the registry already has it. */
export async function pushBlob(registry: PushTarget, repository: string, blob: BuiltBlob): Promise<void> {
  const base = `${registry.url}/v2/${repository}`;
  const head = await registryFetch(registry, repository, `${base}/blobs/${blob.digest}`, { method: 'HEAD' });
  if (head.status === 200) return;
  const start = await expectOk(
    await registryFetch(registry, repository, `${base}/blobs/uploads/`, { method: 'POST' }),
    `start upload of ${blob.digest} to ${repository}`,
    202,
  );
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (!location) throw new Error(`upload start for ${repository} returned no Location`);
  const put = new URL(location, registry.url);
  put.searchParams.set('digest', blob.digest);
  const done = await registryFetch(registry, repository, put.toString(), {
    method: 'PUT',
    // No hand-set Content-Length: fetch computes it from the Buffer, and once undici 7 is loaded in the
    // process Node 20's fetch sends a caller-set one twice, which undici rejects (nodejs/undici#5500).
    headers: { 'content-type': 'application/octet-stream' },
    body: blob.data,
  });
  await (await expectOk(done, `upload of ${blob.digest} to ${repository}`, 201)).arrayBuffer();
}

async function putManifest(
  registry: PushTarget,
  repository: string,
  ref: string,
  m: { manifest: Buffer; mediaType: string; digest: string },
): Promise<void> {
  const res = await registryFetch(registry, repository, `${registry.url}/v2/${repository}/manifests/${ref}`, {
    method: 'PUT',
    headers: { 'content-type': m.mediaType },
    body: m.manifest,
  });
  await (await expectOk(res, `PUT manifest ${repository}:${ref}`, 201)).arrayBuffer();
  const got = res.headers.get('docker-content-digest');
  if (got && got !== m.digest)
    throw new Error(`registry stored ${repository}:${ref} as ${got}, expected ${m.digest}`);
}

async function pushOneImage(
  registry: PushTarget,
  repository: string,
  ref: string | undefined,
  image: BuiltImage,
) {
  for (const blob of [image.config, ...image.layers]) await pushBlob(registry, repository, blob);
  await putManifest(registry, repository, ref ?? image.digest, image);
}

/** Pushes an image or index (children by digest first); `ref` undefined pushes by digest only (untagged). */
export async function pushImage(
  registry: PushTarget,
  repository: string,
  ref: string | undefined,
  image: BuiltImage | BuiltIndex,
): Promise<{ digest: string }> {
  if (image.kind === 'image') {
    await pushOneImage(registry, repository, ref, image);
    return { digest: image.digest };
  }
  // The registry refuses an index whose children it does not have yet.
  for (const child of [...image.children, ...image.extraChildren]) {
    await pushOneImage(registry, repository, undefined, child);
  }
  await putManifest(registry, repository, ref ?? image.digest, image);
  return { digest: image.digest };
}
