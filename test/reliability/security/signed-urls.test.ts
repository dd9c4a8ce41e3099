/**
 * Pre-signed blob URLs are credentials for as long as they live (S3's `X-Amz-Signature` and
 * `X-Amz-Credential`, Docker Hub's CDN `verify=`): when a redirected blob download fails on them (a
 * redirect loop, a redirect without a Location), the failure is recorded, but no signature reaches
 * the log, the dataset or an export. The real anonymous registry sits behind a fault proxy that
 * answers the layer blob GET with a 307 to a loopback "object store" that misbehaves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../hostile/harness.js';
import { datasetText, folderText, leaks, runCli } from './cli-run.js';

const regs = inject('registries');
const SECRETS = { signature: 'SIGSECRET-0123456789abcdef', credential: 'AKIASECRETCREDENTIAL' };
const SIGNED = `X-Amz-Signature=${SECRETS.signature}&X-Amz-Credential=${SECRETS.credential}%2F20261207`;

let work: string;
let image: BuiltImage;
let store: Server;
let storeUrl: string;
const proxies: FaultProxy[] = [];

/** The misbehaving object store: `/loop1` and `/loop2` redirect to each other, `/nolocation` has none. */
function misbehave(path: string, res: ServerResponse): void {
  if (path === '/loop1') res.writeHead(302, { location: `/loop2?${SIGNED}` }).end();
  else if (path === '/loop2') res.writeHead(302, { location: `/loop1?${SIGNED}` }).end();
  else if (path === '/nolocation') res.writeHead(302).end();
  else res.writeHead(404).end();
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'hubcrawl-signed-'));
  image = await buildImage({
    layers: [{ entries: [{ type: 'file', path: 'etc/os-release', content: 'ID=debian\n' }] }],
  });
  await pushImage(regs.none, 'signed-urls/app', '1', image);
  store = createServer((req, res) => {
    req.resume();
    misbehave(new URL(req.url ?? '/', 'http://x').pathname, res);
  });
  await new Promise<void>((r) => store.listen(0, '127.0.0.1', r));
  storeUrl = `http://127.0.0.1:${(store.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.allSettled([...proxies.map((p) => p.stop()), new Promise((r) => store?.close(r))]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('signed blob URLs in failed redirects', () => {
  for (const [what, path] of [
    ['a redirect loop', '/loop1'],
    ['a redirect without a Location', '/nolocation'],
  ] as const) {
    it(`keeps the signature out of the log, the dataset and the export after ${what}`, async () => {
      const proxy = await startFaultProxy(regs.none.url);
      proxies.push(proxy);
      proxy.addRule({
        method: 'GET',
        path: new RegExp(`/blobs/${image.layers[0]!.digest}`),
        times: Number.POSITIVE_INFINITY,
        action: { kind: 'respond', status: 307, headers: { location: `${storeUrl}${path}?${SIGNED}` } },
      });
      const db = join(work, `${path.slice(1)}.sqlite`);
      const crawl = await runCli(
        ['crawl', '--db', db, '--log-level', 'trace', '--image', `${proxy.host}/signed-urls/app:1`],
        {},
      );
      expect(crawl.code, crawl.stderr.slice(-2000)).toBe(1);
      const out = join(work, `${path.slice(1)}-export`);
      const exp = await runCli(['export', '--db', db, '--out', out], {});
      expect(exp.code).toBe(0);
      const dataset = datasetText(db);
      // The failure was recorded, with the redacted URL: there was a message to leak into.
      expect(dataset).toContain(`${path}?X-Amz-Signature=%5Bredacted%5D`);
      expect(leaks(crawl.stderr + crawl.stdout + exp.stderr + exp.stdout, SECRETS)).toEqual([]);
      expect(leaks(dataset, SECRETS)).toEqual([]);
      expect(leaks(folderText(out), SECRETS)).toEqual([]);
    });
  }
});
