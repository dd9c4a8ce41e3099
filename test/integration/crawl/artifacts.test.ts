/**
 * OCI artifacts pushed next to an image are not images. (Between the two crawls the dataset is given the
 * rows an older hubcrawl left for the signature, which the second crawl must forget.) A cosign signature (tag `sha256-<hex>.sig`: an
 * image config over a `simplesigning` payload), an SBOM with `artifactType` over the empty config, and a
 * Helm chart (its own config type, a gzipped tar "layer") share one repository with a real image. The
 * crawl analyzes the image (also a copy whose manifest declares an `artifactType`), skips the artifacts
 * without a config or layer GET and without failing, and remembers them by digest: the next crawl sends no
 * manifest GET for them (a counted pull on Docker Hub).
 * Real registry on loopback behind the fault proxy, whose log counts what went over the wire.
 */
import { Writable } from 'node:stream';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import {
  type BuiltBlob,
  type BuiltImage,
  blobOf,
  buildImage,
  buildLayer,
  MEDIA_TYPES,
} from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import {
  DROPPER_CONTENT,
  DROPPER_PATH,
  makeWorkspace,
  runTestCrawl,
  TEST_RULE_ID,
  type TestCrawlOutcome,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'signed/app';
let proxy: FaultProxy;
let ws: Workspace;
let image: BuiltImage;
let signature: BuiltImage;
let sbom: BuiltImage;
let chart: BuiltImage;
/** The image again, its manifest with an `artifactType` added. */
let disguised: BuiltImage;
/** The image again, its config typed `application/octet-stream` as old tools wrote it (Docker pulls it). */
let legacyConfig: BuiltImage;
const sigTag = () => `${image.digest.replace(':', '-')}.sig`;

/** An artifact as a pushable "image": its manifest bytes as given, its blobs. */
function artifact(manifest: Record<string, unknown>, config: BuiltBlob, layers: BuiltBlob[]): BuiltImage {
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const { digest } = blobOf(bytes, MEDIA_TYPES.ociManifest);
  return {
    kind: 'image',
    format: 'oci',
    manifest: bytes,
    digest,
    mediaType: MEDIA_TYPES.ociManifest,
    config,
    layers,
    platform: { os: 'unknown', architecture: 'unknown' },
  };
}
const descriptor = (b: BuiltBlob, annotations?: Record<string, string>) => ({
  mediaType: b.mediaType,
  digest: b.digest,
  size: b.size,
  ...(annotations ? { annotations } : {}),
});

/** What cosign pushes under `sha256-<hex>.sig`: an OCI image config and a simplesigning payload layer. */
function cosignSignature(target: BuiltImage): BuiltImage {
  const payload = blobOf(
    Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': `${registry.host}/${REPO}` },
          image: { 'docker-manifest-digest': target.digest },
          type: 'cosign container image signature',
        },
        optional: null,
      }),
    ),
    'application/vnd.dev.cosign.simplesigning.v1+json',
  );
  const config = blobOf(
    Buffer.from(
      JSON.stringify({
        architecture: '',
        created: '0001-01-01T00:00:00Z',
        history: [{ created: '0001-01-01T00:00:00Z' }],
        os: '',
        rootfs: { type: 'layers', diff_ids: [payload.digest] },
        config: {},
      }),
    ),
    MEDIA_TYPES.ociConfig,
  );
  return artifact(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: descriptor(config),
      layers: [descriptor(payload, { 'dev.cosignproject.cosign/signature': 'MEUCIQDtestsignature==' })],
    },
    config,
    [payload],
  );
}

/** An SBOM as `oras attach` pushes it: `artifactType`, the empty config, a `subject`. */
function sbomArtifact(target: BuiltImage): BuiltImage {
  const empty = blobOf(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const doc = blobOf(
    Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'signed/app' })),
    'application/spdx+json',
  );
  return artifact(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: 'application/spdx+json',
      config: descriptor(empty),
      layers: [descriptor(doc, { 'org.opencontainers.image.title': 'sbom.spdx.json' })],
      subject: { mediaType: target.mediaType, digest: target.digest, size: target.manifest.length },
    },
    empty,
    [doc],
  );
}

/**
 * The image with its manifest changed by `edit`: an `artifactType` added, or a legacy config type.
 * Docker runs both, so they must stay images: were either enough to skip a manifest, a publisher could
 * hide an image from the study.
 */
function imageVariant(
  target: BuiltImage,
  edit: (m: Record<string, unknown>) => Record<string, unknown>,
): BuiltImage {
  const manifest = JSON.parse(target.manifest.toString()) as Record<string, unknown>;
  return { ...artifact(edit(manifest), target.config, [...target.layers]), platform: target.platform };
}

/** A Helm chart: its own config type, and a chart "layer" that is a gzipped tar of YAML. */
async function helmChart(): Promise<BuiltImage> {
  const config = blobOf(
    Buffer.from(JSON.stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' })),
    'application/vnd.cncf.helm.config.v1+json',
  );
  const content = await buildLayer([
    { type: 'file', path: 'app/Chart.yaml', content: 'apiVersion: v2\nname: app\nversion: 0.1.0\n' },
  ]);
  const layer: BuiltBlob = { ...content, mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip' };
  return artifact(
    {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: descriptor(config),
      layers: [descriptor(layer)],
    },
    config,
    [layer],
  );
}

beforeAll(async () => {
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-artifacts-');
  image = await buildImage({
    layers: [
      {
        entries: [
          { type: 'dir', path: 'opt' },
          { type: 'dir', path: 'opt/tools' },
          { type: 'file', path: DROPPER_PATH.slice(1), content: DROPPER_CONTENT, mode: 0o755 },
        ],
      },
    ],
    format: 'oci',
  });
  signature = cosignSignature(image);
  sbom = sbomArtifact(image);
  chart = await helmChart();
  disguised = imageVariant(image, (m) => ({ ...m, artifactType: 'application/vnd.example.not-an-image' }));
  legacyConfig = imageVariant(image, (m) => ({
    ...m,
    config: { ...(m.config as object), mediaType: 'application/octet-stream' },
  }));
  await pushImage(registry, REPO, '1.0', image);
  await pushImage(registry, REPO, sigTag(), signature);
  await pushImage(registry, REPO, 'sbom', sbom);
  await pushImage(registry, REPO, 'chart-0.1.0', chart);
  await pushImage(registry, REPO, 'disguised', disguised);
  await pushImage(registry, REPO, 'legacy-config', legacyConfig);
});

afterAll(async () => {
  await proxy?.stop();
  ws?.cleanup();
});

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** runTestCrawl of the repository, with the crawl's log kept (info and above) to read back. */
async function crawl(dbPath: string): Promise<{ out: TestCrawlOutcome; log: LogLine[] }> {
  const { createLogger } = await import('../../../src/core/log.js');
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const out = await runTestCrawl(
    dbPath,
    ws.iocFile,
    {
      seeds: { repos: [`${registry.host}/${REPO}`] },
      registries: { [registry.host]: { endpoint: proxy.url } },
    },
    { log: createLogger({ level: 'info', destination }) },
  );
  return { out, log: lines.map((l) => JSON.parse(l) as LogLine) };
}

const requests = (method: string, path: string) =>
  proxy.log.filter((e) => e.method === method && e.path === path).length;
const manifestGets = (a: BuiltImage) => requests('GET', `/v2/${REPO}/manifests/${a.digest}`);
const blobGets = (a: BuiltImage) =>
  [a.config, ...a.layers].map((b) => requests('GET', `/v2/${REPO}/blobs/${b.digest}`));

/**
 * What a hubcrawl from before artifacts were told apart left for the signature: an `unknown/unknown` image
 * row listing its payload as a layer, that layer failed as corrupt tar, and its frontier item failed with
 * attempts left, so the next crawl retries it.
 */
function recordSignatureAsAnOlderVersionDid(dbPath: string): void {
  const db = new BetterSqlite3(dbPath);
  try {
    const payload = signature.layers[0]!;
    const now = new Date().toISOString();
    db.prepare(
      `INSERT INTO images (digest, platform, os, architecture, config_digest, first_seen, last_seen)
       VALUES (?, 'unknown/unknown', 'unknown', 'unknown', ?, ?, ?)`,
    ).run(signature.digest, signature.config.digest, now, now);
    db.prepare(
      `INSERT INTO layers (digest, media_type, compressed_size, status, error_code, error_message, attempts)
       VALUES (?, ?, ?, 'failed', 'CORRUPT_INPUT', 'tar stream is truncated', 1)`,
    ).run(payload.digest, payload.mediaType, payload.size);
    db.prepare(
      'INSERT INTO image_layers (image_digest, position, layer_digest, media_type, size) VALUES (?, 0, ?, ?, ?)',
    ).run(signature.digest, payload.digest, payload.mediaType, payload.size);
    const item = {
      registry: registry.host,
      repository: REPO,
      digest: payload.digest,
      mediaType: payload.mediaType,
      size: payload.size,
      gate: false,
    };
    db.prepare(
      `INSERT INTO frontier (kind, key, payload_json, state, attempts, last_error, last_error_code, retryable, created_at, updated_at)
       VALUES ('layer', ?, ?, 'failed', 1, 'tar stream is truncated', 'CORRUPT_INPUT', 0, ?, ?)`,
    ).run(`${payload.digest}|3|older`, JSON.stringify(item), now, now);
  } finally {
    db.close();
  }
}

describe('OCI artifacts next to an image', () => {
  let dbPath: string;
  let first: { out: TestCrawlOutcome; log: LogLine[] };
  let second: { out: TestCrawlOutcome; log: LogLine[] };
  const artifacts = () => [signature, sbom, chart];

  beforeAll(async () => {
    dbPath = ws.dbPath('artifacts');
    proxy.reset();
    first = await crawl(dbPath);
    recordSignatureAsAnOlderVersionDid(dbPath);
    second = await crawl(dbPath);
  });

  it('are skipped without failing the run, and the image is analyzed with its findings', () => {
    for (const run of [first, second]) {
      expect(run.out).toMatchObject({ status: 'completed', failedItems: 0 });
      expect(run.out.stats).toMatchObject({ artifactsSkipped: 3, itemsFailed: 0 });
    }
    expect(first.out.stats).toMatchObject({ images: 3, manifestsFetched: 6 });
    expect(queryDataset(dbPath, 'SELECT kind, key, error_code FROM failures')).toEqual([]);
    // The image with an artifactType, or a legacy config type, is analyzed like the image.
    const images = [image, disguised, legacyConfig].map((i) => i.digest).sort();
    expect(queryDataset(dbPath, 'SELECT digest, platform FROM images ORDER BY digest')).toEqual(
      images.map((digest) => ({ digest, platform: 'linux/amd64' })),
    );
    expect(
      queryDataset(
        dbPath,
        'SELECT image_digest, rule_id, path FROM findings WHERE rule_id = ? ORDER BY image_digest',
        TEST_RULE_ID,
      ),
    ).toEqual(images.map((image_digest) => ({ image_digest, rule_id: TEST_RULE_ID, path: DROPPER_PATH })));
    expect(queryDataset(dbPath, 'SELECT digest, status FROM layers')).toEqual([
      { digest: image.layers[0]!.digest, status: 'analyzed' },
    ]);
    // Their tags are still observed, pointing at the artifacts' digests.
    const tags = queryDataset<{ tag: string; digest: string }>(
      dbPath,
      'SELECT DISTINCT tag, digest FROM tag_observations ORDER BY tag',
    );
    expect(tags).toEqual(
      [
        { tag: '1.0', digest: image.digest },
        { tag: sigTag(), digest: signature.digest },
        { tag: 'sbom', digest: sbom.digest },
        { tag: 'chart-0.1.0', digest: chart.digest },
        { tag: 'disguised', digest: disguised.digest },
        { tag: 'legacy-config', digest: legacyConfig.digest },
      ].sort((a, b) => (a.tag < b.tag ? -1 : 1)),
    );
  });

  it('cost one manifest GET each, in the first run only, and no config or layer GET', () => {
    for (const a of artifacts()) {
      expect(manifestGets(a)).toBe(1);
      expect(blobGets(a)).toEqual(a.layers.map(() => 0).concat(0));
    }
    expect(second.out.stats).toMatchObject({ manifestsFetched: 0, manifestsReused: 6 });
    // The manifests are kept by digest with the run that paid for them.
    expect(
      queryDataset(dbPath, 'SELECT digest, run_id FROM manifests ORDER BY digest').map((r) => r.digest),
    ).toEqual([image, disguised, legacyConfig, ...artifacts()].map((a) => a.digest).sort());
    // The query docs/schema.md gives for them.
    const listed = queryDataset(
      dbPath,
      `SELECT m.digest, json_extract(CAST(m.raw AS TEXT), '$.artifactType') AS artifact_type,
              json_extract(CAST(m.raw AS TEXT), '$.config.mediaType') AS config_type
         FROM manifests m
        WHERE m.kind = 'image' AND NOT EXISTS (SELECT 1 FROM images i WHERE i.digest = m.digest)
        ORDER BY m.digest`,
    );
    expect(listed).toEqual(
      [
        { digest: signature.digest, artifact_type: null, config_type: MEDIA_TYPES.ociConfig },
        {
          digest: sbom.digest,
          artifact_type: 'application/spdx+json',
          config_type: 'application/vnd.oci.empty.v1+json',
        },
        {
          digest: chart.digest,
          artifact_type: null,
          config_type: 'application/vnd.cncf.helm.config.v1+json',
        },
      ].sort((a, b) => (a.digest < b.digest ? -1 : 1)),
    );
  });

  it('are counted by `hubcrawl stats`', async () => {
    const { statsCommand } = await import('../../../src/cli/commands/stats.js');
    const written: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk, ...rest: unknown[]) => {
      written.push(String(chunk));
      (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
      return true;
    });
    try {
      await statsCommand({ db: dbPath });
    } finally {
      write.mockRestore();
    }
    expect(written.join('')).toMatch(/\nOCI artifacts skipped +3\n/);
  });

  it('are logged once each, at info level, with what was skipped and why', () => {
    for (const run of [first, second]) {
      const skipped = run.log.filter((l) => l.msg.startsWith('skipped an OCI artifact'));
      expect(skipped.map((l) => l.digest).sort()).toEqual(
        artifacts()
          .map((a) => a.digest)
          .sort(),
      );
      for (const l of skipped) expect(l.level).toBe(30);
      const why = (a: BuiltImage) => skipped.find((l) => l.digest === a.digest)?.reason;
      expect(why(signature)).toMatch(/application\/vnd\.dev\.cosign\.simplesigning\.v1\+json/);
      expect(why(sbom)).toMatch(/config media type "application\/vnd\.oci\.empty\.v1\+json"/);
      expect(why(chart)).toMatch(/config media type "application\/vnd\.cncf\.helm\.config\.v1\+json"/);
    }
  });
});
