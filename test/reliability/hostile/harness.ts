/**
 * Shared by the hostile-input suites: one real crawl (runCrawl) into a temp SQLite file, quick
 * questions about what it recorded, and raw pushes of arbitrary bytes (blobs, manifests with a
 * chosen media type) into the real registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../../scripts/lib/image-builder.js';
import { type PushTarget, pushBlob, registryFetch } from '../../../scripts/lib/push.js';
import { builtinIocSets } from '../../../src/analyzer/iocs/builtin.js';
import { type ConfigInput, configSchema } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/core/log.js';
import { type Database, openDatabase } from '../../../src/db/open.js';
import { type CrawlOptions, type CrawlOutcome, runCrawl } from '../../../src/pipeline/run.js';

export { pushBlob, pushImage } from '../../../scripts/lib/push.js';

/** A fresh dataset in a temp folder; close() closes it and removes the folder. */
export interface Dataset {
  db: Database;
  dir: string;
  close(): void;
}

export function openDataset(): Dataset {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-hostile-'));
  const db = openDatabase(join(dir, 'data.sqlite'));
  return {
    db,
    dir,
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CrawlResult extends Dataset {
  outcome: CrawlOutcome;
}

/**
 * Runs one crawl with `config` (defaults: no docker config file, fast retries with no wall-clock
 * backoff) into a fresh dataset. The database stays open for assertions; call close().
 */
export async function crawl(
  config: ConfigInput,
  extra: Partial<Pick<CrawlOptions, 'httpOptions' | 'env' | 'log'>> = {},
): Promise<CrawlResult> {
  const dataset = openDataset();
  return { ...dataset, outcome: await crawlInto(dataset.db, config, extra) };
}

/** One more crawl, with the same defaults, into an existing dataset (a later run of a study). */
export function crawlInto(
  db: Database,
  config: ConfigInput,
  extra: Partial<Pick<CrawlOptions, 'httpOptions' | 'env' | 'log'>> = {},
): Promise<CrawlOutcome> {
  const parsed = configSchema.parse({
    dockerConfig: null,
    ...config,
    http: { maxRetries: 2, timeoutMs: 10_000, requestsPerSecondPerHost: 1000, ...config.http },
  });
  return runCrawl(db, {
    config: parsed,
    iocSets: builtinIocSets(),
    log: extra.log ?? silentLogger(),
    env: extra.env ?? {},
    httpOptions: { retryBaseMs: 1, retryMaxMs: 5, sleep: async () => {}, ...extra.httpOptions },
  });
}

export interface FailureRow {
  kind: string;
  key: string;
  error_code: string | null;
  message: string;
}

/** Every failure the crawl recorded (failures table). */
export function failures(db: Database): FailureRow[] {
  return db.prepare('SELECT kind, key, error_code, message FROM failures ORDER BY id').all() as FailureRow[];
}

/** The failures whose frontier key mentions `needle` (a digest, a tag, a repository). */
export function failuresOf(db: Database, needle: string): FailureRow[] {
  return failures(db).filter((f) => f.key.includes(needle));
}

/** A layer's status row. */
export function layerRow(
  db: Database,
  digest: string,
):
  | { status: string; error_code: string | null; error_message: string | null; entry_count: number | null }
  | undefined {
  return db
    .prepare('SELECT status, error_code, error_message, entry_count FROM layers WHERE digest = ?')
    .get(digest) as never;
}

/** Platform images recorded, with their repository-independent digest. */
export function imageDigests(db: Database): string[] {
  return (db.prepare('SELECT digest FROM images ORDER BY digest').all() as { digest: string }[]).map(
    (r) => r.digest,
  );
}

/** Whether every layer of `imageDigest` was analyzed (the crawl finished that image). */
export function imageFullyAnalyzed(db: Database, imageDigest: string): boolean {
  const row = db
    .prepare(
      `SELECT count(*) AS n, sum(l.status = 'analyzed') AS ok
         FROM image_layers il JOIN layers l ON l.digest = il.layer_digest WHERE il.image_digest = ?`,
    )
    .get(imageDigest) as { n: number; ok: number | null };
  return row.n > 0 && row.ok === row.n;
}

/** Uploads arbitrary bytes as a blob; returns its digest. */
export async function pushRawBlob(target: PushTarget, repository: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  await pushBlob(target, repository, {
    digest,
    data,
    size: data.length,
    mediaType: 'application/octet-stream',
  });
  return digest;
}

/** PUTs arbitrary bytes as a manifest with a chosen Content-Type; returns the registry's status. */
export async function putRawManifest(
  target: PushTarget,
  repository: string,
  ref: string,
  body: Buffer,
  contentType: string,
): Promise<{ status: number; digest: string }> {
  const res = await registryFetch(target, repository, `${target.url}/v2/${repository}/manifests/${ref}`, {
    method: 'PUT',
    headers: { 'content-type': contentType },
    body,
  });
  await res.arrayBuffer();
  return { status: res.status, digest: sha256(body) };
}
