/**
 * A layer whose bytes change on the way (a flipped byte the decoder cannot notice) against the real
 * registry, through the fault proxy. The blob stream does not hash layers itself (the analyzer does,
 * off the main thread for zstd), so this proves the crawl still refuses them: the layer fails with
 * DIGEST_MISMATCH, naming the blob, and no facts are kept; the next crawl, on clean bytes, analyzes it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage, buildLayer } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type TestCrawlOutcome,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const MiB = 1024 * 1024;
/** Random bytes: zstd stores them in raw blocks, verbatim, so a flipped byte decodes without complaint. */
const PAYLOAD = randomBytes(6 * MiB);

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let image: BuiltImage;
let layerDigest: string;
let dbPath: string;
let corrupt: TestCrawlOutcome;

const settings = () => ({
  seeds: { repos: [`${registry.host}/acme/corrupt`] },
  registries: { [registry.host]: { endpoint: proxy.url } },
});

beforeAll(async () => {
  registry = await startRegistry();
  const s = await buildCrawlScenario();
  // Past the analyzer's 4 MiB mark, so the digest is checked on its worker thread.
  const upper = await buildLayer([{ type: 'file', path: 'opt/payload.bin', content: PAYLOAD }], 'zstd');
  image = await buildImage({ layers: [s.base, upper] });
  layerDigest = upper.digest;
  await pushImage(registry, 'acme/corrupt', 'v1', image);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('corrupt');

  const at = upper.data.indexOf(PAYLOAD.subarray(3 * MiB, 3 * MiB + 64)) + 10;
  expect(at).toBeGreaterThan(10);
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`/blobs/${layerDigest}$`),
    times: Number.POSITIVE_INFINITY,
    action: { kind: 'corrupt-body', atByte: at },
  });
  corrupt = await runTestCrawl(dbPath, ws.iocFile, settings());
  proxy.clearRules();
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

describe('a layer corrupted in transit', () => {
  it('fails with DIGEST_MISMATCH, naming the blob, and keeps no facts of it', () => {
    expect(corrupt.status).not.toBe('running');
    const failures = queryDataset<{ kind: string; error_code: string; message: string }>(
      dbPath,
      "SELECT kind, error_code, message FROM failures WHERE kind = 'layer'",
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error_code).toBe('DIGEST_MISMATCH');
    expect(failures[0]?.message).toContain(`blob ${registry.host}/acme/corrupt@${layerDigest}`);
    expect(failures[0]?.message).toMatch(/expected digest sha256:[0-9a-f]{64} but the bytes hash to sha256:/);
    const files = queryDataset(dbPath, 'SELECT path FROM layer_files WHERE layer_digest = ?', layerDigest);
    expect(files).toEqual([]);
  });

  it('is analyzed by the next crawl once its bytes arrive intact', async () => {
    await runTestCrawl(dbPath, ws.iocFile, settings());
    const layers = queryDataset<{ status: string }>(
      dbPath,
      'SELECT status FROM layers WHERE digest = ?',
      layerDigest,
    );
    expect(layers).toEqual([{ status: 'analyzed' }]);
  });
});
