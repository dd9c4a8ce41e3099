/**
 * `Authorization` goes only to the origin that challenged for it. The real htpasswd and token
 * registries sit behind a fault proxy that answers the layer blob GET with a 307 to a second
 * listener (test/helpers/blob-host.ts) serving the same bytes, as Docker Hub does with its CDN.
 * Another port of 127.0.0.1 is another origin, and so is `localhost` on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { type BlobHost, startBlobHost } from '../../helpers/blob-host.js';
import type { ProvidedRegistry } from '../../setup/registries.js';
import { crawl, failures, imageFullyAnalyzed, pushImage } from '../hostile/harness.js';

const regs = inject('registries');
let image: BuiltImage;
let blobHost: BlobHost;
const proxies: FaultProxy[] = [];
const servers: Server[] = [];

/** A loopback listener that answers every request with `answer` and records the request headers. */
async function recordingServer(
  answer: (res: ServerResponse) => void,
): Promise<{ url: string; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** A fault proxy to `reg` that answers every GET of the image's layer blob with a 307 to `location`. */
async function proxyRedirectingLayerTo(reg: ProvidedRegistry, location: string): Promise<FaultProxy> {
  const proxy = await startFaultProxy(reg.url);
  proxies.push(proxy);
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`/blobs/${image.layers[0]!.digest}`),
    times: Number.POSITIVE_INFINITY,
    action: { kind: 'respond', status: 307, headers: { location } },
  });
  return proxy;
}

/** Crawls `redirect/app:1` through `proxy`, with `reg`'s credentials configured for the proxy's host. */
function crawlWithCredentials(
  proxy: FaultProxy,
  reg: ProvidedRegistry,
  extra: { maxAttempts?: number } = {},
) {
  return crawl({
    seeds: { images: [`${proxy.host}/redirect/app:1`] },
    registries: { [proxy.host]: { username: reg.username!, password: reg.password! } },
    ...extra,
  });
}

beforeAll(async () => {
  image = await buildImage({
    layers: [
      { entries: [{ type: 'file', path: 'usr/lib/x86_64-linux-gnu/liblzma.so.5.4.5', content: 'ok' }] },
    ],
  });
  for (const r of [regs.htpasswd, regs.token]) await pushImage(r, 'redirect/app', '1', image);
  blobHost = await startBlobHost(image.layers[0]!.data);
});

afterAll(async () => {
  await Promise.allSettled([
    ...proxies.map((p) => p.stop()),
    blobHost?.stop(),
    ...servers.map((srv) => new Promise((resolve) => srv.close(resolve))),
  ]);
});

describe('Authorization on a redirected blob download', () => {
  for (const flavour of ['htpasswd', 'token'] as const) {
    for (const [where, location] of [
      ['another port of 127.0.0.1', () => blobHost.url],
      ['localhost instead of 127.0.0.1', () => blobHost.url.replace('127.0.0.1', 'localhost')],
    ] as const) {
      it(`is not sent to ${where} when the ${flavour} registry redirects a layer there`, async () => {
        const reg = regs[flavour];
        const layer = image.layers[0]!.digest;
        const proxy = await proxyRedirectingLayerTo(
          reg,
          `${location()}/cdn/${layer}?X-Amz-Signature=fixture`,
        );
        const before = blobHost.requests.length;
        const r = await crawlWithCredentials(proxy, reg);
        try {
          expect(r.outcome.status).toBe('completed');
          expect(imageFullyAnalyzed(r.db, image.digest)).toBe(true);
          // The registry's own blob GET carried credentials: there was a header to leak.
          const layerGets = proxy.log.filter((e) => e.path.includes(`/blobs/${layer}`));
          expect(layerGets.some((e) => typeof e.headers.authorization === 'string')).toBe(true);
          const seen = blobHost.requests.slice(before);
          expect(seen.length).toBeGreaterThan(0);
          expect(seen.map((q) => q.headers.authorization)).toEqual(seen.map(() => undefined));
        } finally {
          r.close();
        }
      });
    }
  }

  for (const scheme of ['Basic', 'Bearer'] as const) {
    it(`answers no ${scheme} challenge from the host a blob was redirected to`, async () => {
      const reg = regs.htpasswd;
      // A realm on yet another listener: a token request there would carry the registry's password.
      const realm = await recordingServer((res) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}'),
      );
      const cdn = await recordingServer((res) =>
        res
          .writeHead(401, {
            'www-authenticate':
              scheme === 'Basic' ? 'Basic realm="cdn"' : `Bearer realm="${realm.url}/token",service="cdn"`,
          })
          .end(),
      );
      const proxy = await proxyRedirectingLayerTo(reg, `${cdn.url}/cdn/${image.layers[0]!.digest}`);
      const r = await crawlWithCredentials(proxy, reg, { maxAttempts: 1 });
      try {
        expect(cdn.seen.length).toBeGreaterThan(0);
        expect(cdn.seen.map((h) => h.authorization)).toEqual(cdn.seen.map(() => undefined));
        expect(realm.seen.map((h) => h.authorization)).toEqual(realm.seen.map(() => undefined));
        expect(failures(r.db).map((f) => f.kind)).toEqual(['layer']);
      } finally {
        r.close();
      }
    });
  }
});
