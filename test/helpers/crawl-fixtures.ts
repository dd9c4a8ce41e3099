/**
 * Images for the whole-crawl integration tests: several repositories on one shared Debian base
 * layer, with indicators planted where the expected findings can be written out by hand — a file
 * whose sha256 is in a test IOC set (present, removed by a whiteout, hidden by an opaque dir), a
 * signature-bearing stand-in liblzma, an affected liblzma5 dpkg version on one platform of an
 * index (with a BuildKit attestation that must be skipped). Also the glue every crawl test needs:
 * a temp workspace, a config, the IOC sets and an in-process crawl.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signatureBearingElf } from '../../scripts/demo-images.js';
import { alpineEntries, debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import {
  type BuiltBlob,
  type BuiltImage,
  type BuiltIndex,
  buildImage,
  buildIndex,
  buildLayer,
  type LayerEntry,
} from '../../scripts/lib/image-builder.js';
import { type PushTarget, pushBlob, pushImage } from '../../scripts/lib/push.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Logger } from '../../src/core/log.js';

/** `<id>@<version>` of the built-in xz set, read from iocs/ (its version moves with the rules). */
export function builtinSetLabel(): string {
  const set = JSON.parse(
    readFileSync(new URL('../../iocs/xz-cve-2024-3094.json', import.meta.url), 'utf8'),
  ) as { id: string; version: string };
  return `${set.id}@${set.version}`;
}

/** Content of the planted file whose sha256 the test IOC set lists. */
export const DROPPER_CONTENT = 'hubcrawl integration test dropper: not malware, just a known hash\n';
export const DROPPER_PATH = '/opt/tools/dropper.bin';
export const DROPPER_SHA256 = createHash('sha256').update(DROPPER_CONTENT).digest('hex');
export const TEST_IOC_SET_ID = 'hubcrawl-test';
export const TEST_IOC_SET_VERSION = '1';
export const TEST_RULE_ID = 'test-dropper-sha256';
/** Where the signature-bearing stand-in liblzma is planted. */
export const SIG_LIB_PATH = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.0';

/** The test IOC set (file-sha256 of DROPPER_CONTENT) as JSON text, for loadIocSetFile. */
export function testIocSetJson(): string {
  return JSON.stringify(
    {
      id: TEST_IOC_SET_ID,
      version: TEST_IOC_SET_VERSION,
      title: 'hubcrawl integration test indicators',
      references: ['https://example.invalid/hubcrawl-test'],
      rules: [
        {
          id: TEST_RULE_ID,
          kind: 'file-sha256',
          sha256: DROPPER_SHA256,
          paths: ['/opt/**'],
          description: 'the planted test dropper',
        },
      ],
    },
    null,
    2,
  );
}

const dropperEntries = (): LayerEntry[] => [
  { type: 'dir', path: 'opt' },
  { type: 'dir', path: 'opt/tools' },
  { type: 'file', path: DROPPER_PATH.slice(1), content: DROPPER_CONTENT, mode: 0o755 },
];

/** One image to push: repository, tag (undefined = by digest only) and the image or index. */
export interface ScenarioImage {
  repository: string;
  tag: string | undefined;
  image: BuiltImage | BuiltIndex;
}

export interface CrawlScenario {
  /** The bookworm base layer (liblzma5 5.4.1-0.2, clean) shared by every amd64 image. */
  base: BuiltBlob;
  clean: BuiltImage;
  app: BuiltImage;
  removed: BuiltImage;
  opaque: BuiltImage;
  sig: BuiltImage;
  /** amd64: sid base with liblzma5 5.6.1-1; arm64: clean base; plus attestations. */
  multi: BuiltIndex;
  multiAmd64: BuiltImage;
  multiArm64: BuiltImage;
  /** Layer digests by role, for expected rows. */
  layers: { dropper: BuiltBlob; sigLayer: BuiltBlob; sidBase: BuiltBlob };
  images: ScenarioImage[];
}

/** Builds the scenario (deterministic: digests are stable across runs). */
export async function buildCrawlScenario(): Promise<CrawlScenario> {
  const base = await buildLayer(debianBaseEntries({ codename: 'bookworm' }));
  const dropper = await buildLayer(dropperEntries());
  const sigLayer = await buildLayer([
    { type: 'file', path: SIG_LIB_PATH.slice(1), content: signatureBearingElf() },
  ]);
  const sidBase = await buildLayer(debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }));
  const armBase = await buildLayer(debianBaseEntries({ codename: 'bookworm', arch: 'arm64' }));

  const clean = await buildImage({ layers: [base] });
  const app = await buildImage({
    layers: [base, dropper, { entries: [{ type: 'file', path: 'opt/app/run.sh', content: '#!/bin/sh\n' }] }],
  });
  const removed = await buildImage({
    layers: [base, dropper, { entries: [{ type: 'whiteout', path: DROPPER_PATH.slice(1) }] }],
  });
  const opaque = await buildImage({
    layers: [
      base,
      dropper,
      {
        entries: [
          { type: 'dir', path: 'opt/tools' },
          { type: 'opaque', dir: 'opt/tools' },
          { type: 'file', path: 'opt/tools/README', content: 'tools were reinstalled\n' },
        ],
      },
    ],
    format: 'oci',
  });
  const sig = await buildImage({ layers: [base, sigLayer] });
  const multiAmd64 = await buildImage({ layers: [sidBase] });
  const multiArm64 = await buildImage({
    layers: [armBase],
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  });
  const multi = buildIndex({ images: [multiAmd64, multiArm64], format: 'oci', withAttestation: true });
  return {
    base,
    clean,
    app,
    removed,
    opaque,
    sig,
    multi,
    multiAmd64,
    multiArm64,
    layers: { dropper, sigLayer, sidBase },
    images: [
      { repository: 'acme/clean', tag: '1', image: clean },
      { repository: 'acme/app', tag: '1.0', image: app },
      { repository: 'acme/removed', tag: '1', image: removed },
      { repository: 'acme/opaque', tag: '1', image: opaque },
      { repository: 'acme/sig', tag: '1', image: sig },
      { repository: 'acme/multi', tag: '1', image: multi },
    ],
  };
}

/** A non-Debian (Alpine) base with an upper layer carrying the test dropper, for debianOnly. */
export async function buildAlpineImage(): Promise<BuiltImage> {
  return buildImage({
    layers: [
      { entries: alpineEntries() },
      // Not the Debian images' dropper layer byte for byte: this blob must only be reachable from Alpine.
      { entries: [...dropperEntries(), { type: 'file', path: 'opt/tools/alpine-note', content: 'apk\n' }] },
      { entries: [{ type: 'file', path: 'etc/motd', content: 'alpine upper\n' }] },
    ],
  });
}

/** Pushes every image of a list (in order). */
export async function pushAll(registry: PushTarget, images: readonly ScenarioImage[]): Promise<void> {
  for (const i of images) await pushImage(registry, i.repository, i.tag, i.image);
}

/** Uploads an image's (or index's) blobs without its manifest, so a later manifest PUT needs no blob upload. */
export async function preloadBlobs(
  registry: PushTarget,
  repository: string,
  image: BuiltImage | BuiltIndex,
): Promise<void> {
  const imgs = image.kind === 'image' ? [image] : [...image.children, ...image.extraChildren];
  for (const i of imgs) for (const b of [i.config, ...i.layers]) await pushBlob(registry, repository, b);
}

/** A temp directory with the test IOC set file in it; `cleanup` removes it. */
export interface Workspace {
  dir: string;
  iocFile: string;
  dbPath(name: string): string;
  cleanup(): void;
}

export function makeWorkspace(prefix = 'hubcrawl-crawl-'): Workspace {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const iocFile = join(dir, 'test-iocs.json');
  writeFileSync(iocFile, testIocSetJson());
  return {
    dir,
    iocFile,
    dbPath: (name) => join(dir, `${name}.sqlite`),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Crawl settings for tests: small concurrency, fast retries, no docker config, quiet. */
export function testSettings(over: ConfigInput = {}): ConfigInput {
  return {
    dockerConfig: null,
    concurrency: 4,
    layerConcurrency: 2,
    logLevel: 'silent',
    ...over,
    http: { maxRetries: 2, requestsPerSecondPerHost: 1000, timeoutMs: 20_000, ...over.http },
  };
}

/** What runTestCrawl hands back: the crawl's outcome and the dataset path. */
export type TestCrawlOutcome = Awaited<ReturnType<typeof import('../../src/pipeline/run.js').runCrawl>>;

/**
 * One in-process crawl on a temp-file database: config from loadConfig (flags = `settings`), the
 * built-in IOC sets plus the test set file. The crawler modules are imported lazily, so a test file
 * pushes its images before undici is loaded into the process (it becomes Node's fetch dispatcher).
 */
export async function runTestCrawl(
  dbPath: string,
  iocFile: string,
  settings: ConfigInput,
  opts: { signal?: AbortSignal; fresh?: boolean; log?: Logger; moreIocFiles?: string[] } = {},
): Promise<TestCrawlOutcome> {
  const [{ runCrawl }, { openDatabase }, { loadConfig }, { builtinIocSets }, { loadIocSetFile }, logs] =
    await Promise.all([
      import('../../src/pipeline/run.js'),
      import('../../src/db/open.js'),
      import('../../src/config/load.js'),
      import('../../src/analyzer/iocs/builtin.js'),
      import('../../src/analyzer/iocs/load.js'),
      import('../../src/core/log.js'),
    ]);
  const config = loadConfig({ flagSettings: { ...testSettings(settings), db: dbPath }, env: {} });
  const iocSets = [...builtinIocSets()];
  for (const file of [iocFile, ...(opts.moreIocFiles ?? [])]) iocSets.push(await loadIocSetFile(file));
  const db = openDatabase(dbPath);
  try {
    return await runCrawl(db, {
      config,
      iocSets,
      // HUBCRAWL_TEST_LOG=debug shows the crawl's own log when a test needs explaining.
      log:
        opts.log ??
        (process.env.HUBCRAWL_TEST_LOG
          ? logs.createLogger({ level: process.env.HUBCRAWL_TEST_LOG as 'debug' })
          : logs.silentLogger()),
      env: {},
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.fresh ? { fresh: true } : {}),
    });
  } finally {
    db.close();
  }
}
