/**
 * crawl → report as a user runs them: the built CLI against the real registry holding the demo
 * images, the CSV checked byte for byte (header, CRLF) and row by row, and by python3's csv module.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../../scripts/lib/push.js';
import { buildCliOnce, removeTempDirs, runCli, settle, startCli, tempDir } from './helpers/cli.js';
import { parseCsv, pythonCsvRecords } from './helpers/csv.js';
import {
  type DemoRegistry,
  expectedDemoRows,
  ISO_TIME,
  REPORT_HEADER,
  recordsToObjects,
  stable,
  startDemoRegistry,
} from './helpers/demo.js';

let demo: DemoRegistry;
let dir: string;
let db: string;
let crawl: Awaited<ReturnType<typeof runCli>>;

beforeAll(async () => {
  await settle(
    startDemoRegistry().then((d) => {
      demo = d;
    }),
    buildCliOnce(),
  );
  dir = tempDir('report');
  db = join(dir, 'demo.sqlite');
  crawl = await runCli(['crawl', '--catalog', demo.registry.url, '--db', db, '--log-level', 'warn']);
}, 180_000);

afterAll(async () => {
  await demo?.registry.stop();
  removeTempDirs();
});

describe('hubcrawl crawl --catalog, then hubcrawl report', () => {
  it('a clean crawl of the demo registry exits 0 and says what it did on stdout', () => {
    expect(crawl.stderr).toBe('');
    expect(crawl.code).toBe(0);
    // How many image visits the summary counts depends on whether demo/multi's amd64 child (it is
    // demo/sid-xz's image) is reached twice; the distinct counts are pinned by stats in dataset-commands.
    expect(crawl.stdout).toMatch(
      /^run 1 completed: [78] images, 7 layers analyzed \(0 already known\), 8 findings, 0 failed items\n$/,
    );
  });

  it('the report CSV has the exact header, CRLF record ends and the twelve expected rows', async () => {
    const r = await runCli(['report', '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`${REPORT_HEADER}\r\n`)).toBe(true);
    const { records, terminators } = parseCsv(r.stdout);
    expect(terminators.every((t) => t === '\r\n')).toBe(true);
    const rows = recordsToObjects(records);
    expect(stable(rows)).toEqual(stable(expectedDemoRows(demo)));
    for (const row of rows) {
      // A plain registry knows no push dates or pull counts; the crawl stamps when it saw each tag.
      expect(row.last_pushed).toBe('');
      expect(row.pull_count).toBe('');
      expect(row.first_seen).toMatch(ISO_TIME);
      expect(row.last_seen).toMatch(ISO_TIME);
      // One crawl: every tag it saw on an image still points there.
      expect(row.tag_current).toBe('true');
    }
  });

  it('python3 csv reads the report file written by --out exactly as our strict reader does, 18 fields a row', async () => {
    const out = join(dir, 'report.csv');
    const r = await runCli(['report', '--db', db, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const text = readFileSync(out, 'utf8');
    const ours = parseCsv(text).records;
    const python = await pythonCsvRecords(out);
    expect(python).toEqual(ours);
    expect(python).toHaveLength(13);
    expect(python.every((rec) => rec.length === 18)).toBe(true);
  });

  it('--format jsonl gives the same records as the CSV, one JSON object a line', async () => {
    const [csv, jsonl] = await Promise.all([
      runCli(['report', '--db', db]),
      runCli(['report', '--db', db, '--format', 'jsonl']),
    ]);
    expect(jsonl.code).toBe(0);
    const lines = jsonl.stdout.trimEnd().split('\n');
    const objects = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const o of objects) expect(Object.keys(o)).toEqual(REPORT_HEADER.split(','));
    const asText = objects.map((o) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === null ? '' : String(v)])),
    );
    expect(asText).toEqual(recordsToObjects(parseCsv(csv.stdout).records));
  });

  it('--final-only drops the evidence that a whiteout hid from the final filesystem', async () => {
    const r = await runCli(['report', '--db', db, '--final-only']);
    expect(r.code).toBe(0);
    const rows = recordsToObjects(parseCsv(r.stdout).records);
    const expected = expectedDemoRows(demo).filter((e) => e.in_final_fs === 'true');
    expect(expected).toHaveLength(11);
    expect(stable(rows)).toEqual(stable(expected));
    expect(rows.some((row) => row.repository === 'demo/removed')).toBe(false);
  });
});

describe('hubcrawl report on an image crawled by digest', () => {
  it('gives an untagged digest an empty tag cell', async () => {
    const sidXz = demo.images.get('demo/sid-xz')!.image;
    const byDigest = join(dir, 'by-digest.sqlite');
    const ref = `${demo.registry.host}/demo/sid-xz@${sidXz.digest}`;
    const c = await runCli(['crawl', '--image', ref, '--db', byDigest, '--quiet']);
    expect(c.code).toBe(0);
    const r = await runCli(['report', '--db', byDigest]);
    const rows = recordsToObjects(parseCsv(r.stdout).records);
    const expected = expectedDemoRows(demo)
      .filter((e) => e.repository === 'demo/sid-xz')
      .map((e) => ({ ...e, tag: '' }));
    expect(expected).toHaveLength(4);
    expect(stable(rows)).toEqual(stable(expected));
    // No tag names it, so no tag can have moved away from it: the cell is empty, and --current-only keeps it.
    expect(rows.map((row) => row.tag_current)).toEqual(['', '', '', '']);
    const current = await runCli(['report', '--db', byDigest, '--current-only']);
    expect(recordsToObjects(parseCsv(current.stdout).records)).toEqual(rows);
  });
});

describe('hubcrawl report after a tag moved to a clean image', () => {
  it('keeps the old row with tag_current false, and --current-only leaves it out', async () => {
    // Its own repository, so the demo world the other tests read stays as it is.
    const sigLib = demo.images.get('demo/sig-lib')!.image;
    const clean = demo.images.get('demo/debian-clean')!.image;
    const moving = join(dir, 'moving.sqlite');
    const crawlMoving = () =>
      runCli(['crawl', '--repo', `${demo.registry.host}/demo/moving`, '--db', moving, '--quiet']);
    await pushImage(demo.registry, 'demo/moving', 'latest', sigLib);
    expect((await crawlMoving()).code).toBe(0);
    await pushImage(demo.registry, 'demo/moving', 'latest', clean);
    expect((await crawlMoving()).code).toBe(0);

    const all = await runCli(['report', '--db', moving]);
    expect(all.code).toBe(0);
    const rows = recordsToObjects(parseCsv(all.stdout).records);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      repository: 'demo/moving',
      tag: 'latest',
      manifest_digest: sigLib.digest,
      tag_current: 'false',
    });
    const jsonl = await runCli(['report', '--db', moving, '--format', 'jsonl', '--final-only']);
    expect(JSON.parse(jsonl.stdout)).toMatchObject({ tag: 'latest', tag_current: 'false' });
    const current = await runCli(['report', '--db', moving, '--current-only']);
    expect(current.code).toBe(0);
    expect(current.stdout).toBe(`${REPORT_HEADER}\r\n`);
  });
});

/** `hubcrawl query` on the demo dataset, its rows printed as `format`. */
const queryAs = (format: string, sql: string) => runCli(['query', '--db', db, '--format', format, sql]);

describe('hubcrawl query is read-only', () => {
  const fingerprint = async () => {
    const r = await queryAs(
      'json',
      'SELECT (SELECT count(*) FROM findings) AS findings, (SELECT count(*) FROM registries) AS registries, (SELECT user_version FROM pragma_user_version) AS user_version',
    );
    expect(r.code).toBe(0);
    return {
      rows: JSON.parse(r.stdout) as unknown,
      file: createHash('sha256').update(readFileSync(db)).digest('hex'),
    };
  };

  it.each([
    ['DELETE FROM findings'],
    ["INSERT INTO registries (host) VALUES ('evil.example') RETURNING id"],
    ['PRAGMA user_version = 9'],
  ])('%s exits 2 with one sentence and leaves the dataset as it was', async (sql) => {
    const before = await fingerprint();
    const r = await runCli(['query', '--db', db, sql]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^hubcrawl: [^\n]*read-only[^\n]*\n$/);
    // A write is refused as one, not as SQL that "does not compile".
    expect(r.stderr).not.toContain('does not compile');
    expect(await fingerprint()).toEqual(before);
  });

  it('refuses several statements at once, saying to give each its own query', async () => {
    const r = await runCli(['query', '--db', db, 'SELECT 1; SELECT 2']);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(
      'hubcrawl: query runs one SQL statement at a time: give each statement its own `hubcrawl query` (sqlite3 runs a script of several)\n',
    );
  });

  it.each([
    ['table', 'SELECT ?'],
    ['csv', 'SELECT digest FROM images WHERE digest = :digest'],
  ])('--format %s of a query with parameters (%s) exits 2, saying none is bound', async (format, sql) => {
    const r = await runCli(['query', '--db', db, '--format', format, sql]);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(
      'hubcrawl: the query has parameters (?, :name, @name or $name), but hubcrawl query binds none: write the values into the SQL\n',
    );
  });

  it('--format csv prints an RFC 4180 table with a header and CRLF record ends', async () => {
    const r = await queryAs(
      'csv',
      'SELECT repository, count(*) AS n FROM report_rows GROUP BY repository ORDER BY repository',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'repository,n\r\ndemo/multi,6\r\ndemo/removed,1\r\ndemo/sid-xz,4\r\ndemo/sig-lib,1\r\n',
    );
  });

  it('--format json prints an array of row objects with SQL types kept', async () => {
    const r = await queryAs(
      'json',
      'SELECT count(*) AS findings, count(DISTINCT image_digest) AS images FROM findings',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ findings: 8, images: 4 }]);
  });

  it('--format jsonl, json and csv stream rows past one batch, exactly as a whole result would read', async () => {
    const numbers = (n: number) =>
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n}) SELECT i, 'row ' || i AS label FROM n`;
    const expectedRows = (n: number) =>
      Array.from({ length: n }, (_v, k) => ({ i: k + 1, label: `row ${k + 1}` }));
    // json: the bytes one JSON.stringify of the whole result gives, also for no row at all.
    for (const n of [2500, 1000, 1, 0]) {
      const sql = n === 0 ? `${numbers(1)} WHERE i > 1` : numbers(n);
      const json = await queryAs('json', sql);
      expect(json.code).toBe(0);
      expect(json.stdout).toBe(`${JSON.stringify(expectedRows(n), null, 2)}\n`);
    }
    const jsonl = await queryAs('jsonl', numbers(2500));
    expect(jsonl.code).toBe(0);
    const lines = jsonl.stdout.split('\n');
    expect(lines).toHaveLength(2501);
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -1).map((l) => JSON.parse(l))).toEqual(expectedRows(2500));
    const out = join(dir, 'numbers.csv');
    const csv = await runCli(['query', '--db', db, '--format', 'csv', '--out', out, numbers(2500)]);
    expect(csv.code).toBe(0);
    const { records, terminators } = parseCsv(readFileSync(out, 'utf8'));
    expect(records[0]).toEqual(['i', 'label']);
    expect(records).toHaveLength(2501);
    expect(records[2500]).toEqual(['2500', 'row 2500']);
    expect(terminators.every((t) => t === '\r\n')).toBe(true);
  });

  it('a query that SQLite refuses while it runs is a usage error (exit 2) naming why, in every format', async () => {
    for (const format of ['table', 'json', 'jsonl', 'csv']) {
      const r = await queryAs(format, "SELECT load_extension('/tmp/x')");
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('the query failed: not authorized (SQLITE_ERROR)');
    }
  });

  it('leaves no cut-off --out file when the query fails after rows were written', async () => {
    // Fails at row 1501, after the first batch of 1000 rows went to the file.
    const failsLate =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT CASE WHEN i > 1500 THEN load_extension('/tmp/x') ELSE i END AS i FROM n";
    for (const format of ['json', 'jsonl', 'csv']) {
      const out = join(dir, `cut.${format}`);
      const r = await runCli(['query', '--db', db, '--format', format, '--out', out, failsLate]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('the query failed: not authorized (SQLITE_ERROR)');
      expect(existsSync(out), format).toBe(false);
    }
    // What is not a regular file this query wrote stays: a link to /dev/null is not removed.
    const link = join(dir, 'null-link');
    symlinkSync('/dev/null', link);
    const r = await runCli(['query', '--db', db, '--format', 'jsonl', '--out', link, failsLate]);
    expect(r.code).toBe(2);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    // A link to a regular file (`latest.csv` -> a dated file): the link stays, and so does the result it held.
    const dated = join(dir, 'dated.csv');
    const latest = join(dir, 'latest.csv');
    writeFileSync(dated, 'an older, whole result\n');
    symlinkSync(dated, latest);
    const viaLink = await runCli(['query', '--db', db, '--format', 'csv', '--out', latest, failsLate]);
    expect(viaLink.code).toBe(2);
    expect(lstatSync(latest).isSymbolicLink()).toBe(true);
    expect(readFileSync(dated, 'utf8')).toBe('an older, whole result\n');
    expect(partialFiles()).toEqual([]);
  });

  it('says it cannot write --out into a missing folder, also when the result is larger than one write', async () => {
    const big =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) SELECT i, printf('%040d', i) AS t FROM n";
    const out = join(dir, 'no-such-folder', 'big.json');
    const r = await runCli(['query', '--db', db, '--format', 'json', '--out', out, big]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write --out ${out} (ENOENT)`);
  });

  it('stops quietly, exit 0, when the reader of its stdout goes away (as `| head` does)', async () => {
    const endless = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n';
    // An endless result ends only this way: json too is written as it is read, not held first.
    for (const format of ['jsonl', 'json']) {
      const { child, done } = startCli(['query', '--db', db, '--format', format, endless]);
      await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
      child.stdout?.destroy();
      const r = await done;
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
    }
  });

  it('keeps integers past 2^53 exact (as strings) and writes blobs as hex, in json, jsonl and csv', async () => {
    const sql = "SELECT 9007199254740993 AS big, 42 AS small, 1.5 AS real, x'00ff' AS blob";
    const expected = { big: '9007199254740993', small: 42, real: 1.5, blob: "x'00ff'" };
    const json = await queryAs('json', sql);
    expect(JSON.parse(json.stdout)).toEqual([expected]);
    const jsonl = await queryAs('jsonl', sql);
    expect(JSON.parse(jsonl.stdout)).toEqual(expected);
    const csv = await queryAs('csv', sql);
    expect(csv.stdout).toBe("big,small,real,blob\r\n9007199254740993,42,1.5,x'00ff'\r\n");
  });

  it('--format table (the default) prints aligned columns and the row count', async () => {
    const r = await runCli(['query', '--db', db, 'SELECT id, host FROM registries']);
    expect(r.code).toBe(0);
    const h = demo.registry.host;
    expect(r.stdout).toBe(`id  host\n--  ${'-'.repeat(h.length)}\n1   ${h}\n(1 row)\n`);
  });
});

/** Temp files of --out results not yet put in place (`.NAME.partial-<pid>`). */
function partialFiles(): string[] {
  return readdirSync(dir).filter((f) => f.includes('.partial-'));
}

describe('--out', () => {
  const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

  it('refuses the dataset itself (or its WAL) as the output file, and leaves the dataset whole', async () => {
    const before = sha(db);
    for (const [command, out] of [
      ['report', db],
      ['query', db],
      ['report', `${db}-wal`],
    ] as const) {
      const args =
        command === 'query'
          ? ['query', '--db', db, '--out', out, 'SELECT 1']
          : [command, '--db', db, '--out', out];
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--out ${out} is the dataset's own file`);
    }
    expect(sha(db)).toBe(before);
    expect((await runCli(['stats', '--db', db])).code).toBe(0);
  });

  it('fails with exit 2 and the path when the file cannot be written, instead of exiting 0 with nothing', async () => {
    const missing = join(dir, 'no-such-folder', 'report.csv');
    const report = await runCli(['report', '--db', db, '--out', missing]);
    expect(report.code).toBe(2);
    expect(report.stderr).toContain(
      `cannot write --out ${missing} (ENOENT); check that its folder exists and is writable`,
    );
    const query = await runCli(['query', '--db', db, '--out', dir, 'SELECT 1']);
    expect(query.code).toBe(2);
    expect(query.stderr).toContain(
      `cannot write --out ${dir} (EISDIR); it is a folder; give the path of a file to write`,
    );
  });

  // 100 000 rows, about 1.3 MB: more than the file-size limit below lets through.
  const manyRows =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) SELECT i, 'row ' || i AS t FROM n";

  it('a full disk (a file-size limit) leaves the earlier result whole, exits 3 saying so, in every format', async () => {
    for (const format of ['table', 'csv', 'json', 'jsonl']) {
      const earlier = join(dir, `earlier.${format}`);
      writeFileSync(earlier, 'the result of yesterday\n');
      // 128 blocks: 64 KiB, room for the dataset's -shm, not for the result.
      const limit = { fileSizeLimitBlocks: 128 };
      const r = await runCli(['query', '--db', db, '--format', format, '--out', earlier, manyRows], limit);
      expect(r.code, format).toBe(3);
      expect(r.stderr).toContain(`cannot write --out ${earlier} (EFBIG): ${earlier} was left as it was;`);
      expect(readFileSync(earlier, 'utf8')).toBe('the result of yesterday\n');
      const fresh = join(dir, `fresh.${format}`);
      const f = await runCli(['query', '--db', db, '--format', format, '--out', fresh, manyRows], limit);
      expect(f.code, format).toBe(3);
      expect(f.stderr).toContain(`(EFBIG): ${fresh} was not created;`);
      expect(existsSync(fresh)).toBe(false);
    }
    // `table` is written whole, as `report`, `scan` and `stats` write theirs; the others stream.
    expect(partialFiles()).toEqual([]);
  });

  it('a SIGINT or SIGTERM while rows are written leaves the earlier result whole and exits 3 saying so', async () => {
    const endless = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n';
    const out = join(dir, 'interrupted.csv');
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      writeFileSync(out, 'the result of yesterday\n');
      const { child, done } = startCli(['query', '--db', db, '--format', 'csv', '--out', out, endless]);
      while (partialFiles().length === 0) await new Promise((r) => setTimeout(r, 10));
      child.kill(signal);
      const r = await done;
      expect(r).toMatchObject({ code: 3, signal: null, stdout: '' });
      expect(r.stderr).toBe(
        `hubcrawl: stopped by ${signal} before the result was whole; ${out} was left as it was\n`,
      );
      expect(readFileSync(out, 'utf8')).toBe('the result of yesterday\n');
      expect(partialFiles()).toEqual([]);
    }
    // A kill no handler sees: the earlier result is still whole; only the unfinished temp file is left.
    const { child, done } = startCli(['query', '--db', db, '--format', 'csv', '--out', out, endless]);
    while (partialFiles().length === 0) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await done;
    expect(readFileSync(out, 'utf8')).toBe('the result of yesterday\n');
    for (const f of partialFiles()) rmSync(join(dir, f));
  });

  it('replaces the file a symlink names, keeping the link and the mode of the file it replaces', async () => {
    const dated = join(dir, 'dated-report.csv');
    const latest = join(dir, 'latest-report.csv');
    writeFileSync(dated, 'old\n');
    chmodSync(dated, 0o640);
    symlinkSync(dated, latest);
    const r = await runCli(['report', '--db', db, '--out', latest]);
    expect(r.code).toBe(0);
    expect(lstatSync(latest).isSymbolicLink()).toBe(true);
    expect(readFileSync(dated, 'utf8').startsWith(`${REPORT_HEADER}\r\n`)).toBe(true);
    expect(statSync(dated).mode & 0o777).toBe(0o640);
    expect(partialFiles()).toEqual([]);
  });

  it('overwrites a file bind-mounted into place (a container volume), which no rename can replace', async () => {
    const host = join(dir, 'host-report.csv');
    const mounted = join(dir, 'mounted-report.csv');
    writeFileSync(host, 'old\n');
    writeFileSync(mounted, '');
    execFileSync('mount', ['--bind', host, mounted]);
    try {
      const r = await runCli(['report', '--db', db, '--out', mounted]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readFileSync(host, 'utf8').startsWith(`${REPORT_HEADER}\r\n`)).toBe(true);
    } finally {
      execFileSync('umount', [mounted]);
    }
    expect(partialFiles()).toEqual([]);
  });

  it('says a path under a regular file cannot be written, exit 2, as for a missing folder', async () => {
    writeFileSync(join(dir, 'plain'), 'x');
    const under = join(dir, 'plain', 'report.csv');
    const r = await runCli(['report', '--db', db, '--out', under]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write --out ${under} (ENOTDIR)`);
    const crawl = await runCli([
      'crawl',
      '--db',
      join(dir, 'plain', 'd.sqlite'),
      '--image',
      'localhost:1/x:1',
    ]);
    expect(crawl.code).toBe(2);
    expect(crawl.stderr).toContain('cannot create the crawl lock');
  });

  it('export names a file in the way of its folder instead of a raw EEXIST', async () => {
    const r = await runCli(['export', '--db', db, '--out', join(dir, 'report.csv')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot create the export folder ${join(dir, 'report.csv')} (EEXIST)`);
  });
});
