/**
 * `hubcrawl query` cannot write: every writing statement (plain, RETURNING, in a CTE, hidden after a
 * SELECT, as a PRAGMA, ATTACH or VACUUM INTO that would create a file) exits non-zero with the
 * read-only sentence, and the dataset's bytes are unchanged afterwards.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { buildImage } from '../../../scripts/lib/image-builder.js';
import { main } from '../../../src/cli/main.js';
import { crawl, pushImage } from '../hostile/harness.js';

const registry = inject('registries').none;
let dbPath = '';
let dir = '';
let cleanup: () => void = () => {};

function fingerprint(): string {
  const h = createHash('sha256');
  for (const f of [dbPath, `${dbPath}-wal`]) if (existsSync(f)) h.update(readFileSync(f));
  return h.digest('hex');
}

/** Runs the CLI in-process with stdout/stderr captured. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  // Writers may wait for the write callback (writeResult does): call it, as a real stream would.
  const capture =
    (append: (s: string) => void) =>
    (s: unknown, ...rest: unknown[]) => {
      append(String(s));
      const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    };
  const o = vi.spyOn(process.stdout, 'write').mockImplementation(capture((s) => (out += s)) as never);
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(capture((s) => (err += s)) as never);
  try {
    return { code: await main(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

beforeAll(async () => {
  const image = await buildImage({
    layers: [{ entries: [{ type: 'file', path: 'etc/debian_version', content: '12\n' }] }],
  });
  await pushImage(registry, 'readonly/app', '1', image);
  const r = await crawl({ seeds: { images: [`${registry.host}/readonly/app:1`] } });
  r.db.pragma('wal_checkpoint(TRUNCATE)');
  r.db.close();
  dir = r.dir;
  dbPath = join(r.dir, 'data.sqlite');
  cleanup = () => rmSync(r.dir, { recursive: true, force: true });
});

afterAll(() => cleanup());

describe('query cannot write', () => {
  it('answers a SELECT (the guard does not block reading)', async () => {
    const r = await cli(['query', '--db', dbPath, '--format', 'json', 'SELECT count(*) AS n FROM images']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual([{ n: 1 }]);
  });

  const writes = (d: string) => [
    'DELETE FROM layers',
    "UPDATE crawl_runs SET status = 'failed'",
    "INSERT INTO registries (host) VALUES ('evil') RETURNING id",
    'WITH x AS (SELECT 1) DELETE FROM images',
    'SELECT 1; DELETE FROM layers',
    'DROP TABLE findings',
    'CREATE TABLE evil (x)',
    'CREATE TEMP TABLE evil AS SELECT * FROM layers',
    'PRAGMA user_version = 99',
    'PRAGMA journal_mode = DELETE',
    `ATTACH DATABASE '${join(d, 'attached.sqlite')}' AS evil`,
    `VACUUM INTO '${join(d, 'copy.sqlite')}'`,
  ];

  it('refuses every writing statement with a non-zero exit and leaves the file byte-identical', async () => {
    const before = fingerprint();
    for (const sql of writes(dir)) {
      const r = await cli(['query', '--db', dbPath, sql]);
      expect(r.code, sql).not.toBe(0);
      expect(r.err, sql).toMatch(/read-only|cannot write|does not compile|one SQL statement at a time/i);
    }
    expect(fingerprint()).toBe(before);
    expect(existsSync(join(dir, 'attached.sqlite'))).toBe(false);
    expect(existsSync(join(dir, 'copy.sqlite'))).toBe(false);
  });
});
