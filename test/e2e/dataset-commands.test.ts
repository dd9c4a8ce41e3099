/**
 * The commands a researcher runs after a crawl — scan, stats, export, iocs, rematch — as a user runs
 * them: the built CLI against a real registry holding the demo images.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/registry.js';
import {
  buildCliOnce,
  ROOT,
  removeTempDirs,
  runCli,
  settle,
  startCli,
  tempDir,
  unprivilegedUser,
} from './helpers/cli.js';
import { parseCsv } from './helpers/csv.js';
import {
  builtinSetLabel,
  type DemoRegistry,
  expectedDemoRows,
  recordsToObjects,
  stable,
  startDemoRegistry,
} from './helpers/demo.js';

const execFileP = promisify(execFile);

let demo: DemoRegistry;
let dir: string;
let db: string;
let registryStopped = false;

beforeAll(async () => {
  await settle(
    startDemoRegistry().then((d) => {
      demo = d;
    }),
    buildCliOnce(),
  );
  dir = tempDir('dataset');
  db = join(dir, 'demo.sqlite');
  const crawl = await runCli(['crawl', '--catalog', demo.registry.url, '--db', db, '--quiet']);
  if (crawl.code !== 0) throw new Error(`setup crawl failed (${crawl.code}): ${crawl.stderr}`);
}, 180_000);

afterAll(async () => {
  if (!registryStopped) await demo?.registry.stop();
  removeTempDirs();
});

/** A user IOC set that only dpkg facts can answer: stored for every layer, so rematch needs no bytes. */
const EXTRA_SET = {
  id: 'e2e-bookworm-liblzma',
  version: '1',
  title: 'The bookworm liblzma5 of the demo base (a stand-in for a newly published indicator)',
  references: [],
  rules: [{ id: 'liblzma5-5.4.1-0.2', kind: 'dpkg-version', package: 'liblzma5', versions: ['5.4.1-0.2'] }],
};

function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

describe('hubcrawl scan', () => {
  it('prints a verdict per image: AFFECTED, lower layer only, clean', async () => {
    const h = demo.registry.host;
    const r = await runCli([
      'scan',
      `${h}/demo/sig-lib:latest`,
      `${h}/demo/removed:latest`,
      `${h}/demo/debian-clean:12`,
      '--db',
      join(dir, 'scan.sqlite'),
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^reference +platform +manifest_digest +os +debian +verdict +rules$/);
    const verdict = (ref: string) => lines.find((l) => l.startsWith(`${h}/${ref} `));
    expect(verdict('demo/sig-lib:latest')).toMatch(/ linux\/amd64 .* AFFECTED +sig-detect-sh-prologue$/);
    expect(verdict('demo/removed:latest')).toMatch(
      / linux\/amd64 .* lower layer only +sig-detect-sh-prologue$/,
    );
    expect(verdict('demo/debian-clean:12')).toMatch(/ linux\/amd64 .* debian +yes +clean$/);
    expect(r.stdout).toMatch(/\(3 rows\)\n$/);
  });

  it('prints only the platforms this scan selected, not those an earlier scan left in the dataset', async () => {
    const h = demo.registry.host;
    const db = join(dir, 'scan-platforms.sqlite');
    const scan = (platform: string, format = 'table') =>
      runCli([
        'scan',
        `${h}/demo/multi:latest`,
        '--platform',
        platform,
        '--format',
        format,
        '--db',
        db,
        '--quiet',
      ]);
    expect((await scan('linux/arm64')).stdout).toMatch(/ linux\/arm64\/v8 .*\n\(1 row\)\n$/);
    const amd64 = await scan('linux/amd64');
    expect(amd64.code).toBe(0);
    expect(amd64.stdout).not.toContain('linux/arm64');
    expect(amd64.stdout).toMatch(/ linux\/amd64 .* AFFECTED .*\n\(1 row\)\n$/);
    const csv = await scan('linux/amd64', 'csv');
    expect(csv.stdout).not.toContain('linux/arm64');
  });

  it('says why a reference resolved to no image, instead of printing "(0 rows)" alone', async () => {
    const h = demo.registry.host;
    const db = join(dir, 'scan-imageless.sqlite');
    const args = ['scan', `${h}/demo/multi:latest`, '--platform', 'linux/s390x', '--db', db, '--quiet'];
    const table = await runCli(args);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/\(0 rows\)\n\nReached no image:\n/);
    expect(table.stdout).toMatch(
      new RegExp(
        `${h.replaceAll('.', '\\.')}/demo/multi:latest +an index: none of its platforms was selected`,
      ),
    );
    const csv = await runCli([...args, '--format', 'csv']);
    expect(csv.stderr).toContain(`hubcrawl: reached no image: ${h}/demo/multi:latest: an index`);
  });

  it('says an index reached no image with the --platform given, even when an earlier scan analyzed its platforms', async () => {
    const h = demo.registry.host;
    const db = join(dir, 'scan-imageless-known.sqlite');
    const ref = `${h}/demo/multi:latest`;
    expect((await runCli(['scan', ref, '--db', db, '--quiet'])).code).toBe(0);
    const r = await runCli(['scan', ref, '--platform', 'linux/s390x', '--db', db, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\(0 rows\)\n\nReached no image:\n/);
    expect(r.stdout).toMatch(
      new RegExp(`${ref.replaceAll('.', '\\.')} +an index: none of its platforms was selected`),
    );
  });

  it('names a reference that reached no image, with its error, instead of leaving it out', async () => {
    const h = demo.registry.host;
    const missing = `${h}/demo/no-such-repo:1`;
    const table = await runCli([
      'scan',
      `${h}/demo/sig-lib:latest`,
      missing,
      '--db',
      join(dir, 'scan-missing.sqlite'),
      '--quiet',
    ]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/ AFFECTED +sig-detect-sh-prologue\n\(1 row\)\n/);
    expect(table.stdout).toContain('\nFailed, so not scanned (the failures table has every attempt):\n');
    expect(table.stdout).toMatch(new RegExp(`\\n${missing.replaceAll('.', '\\.')} +PERMANENT +.*404`));
    const csv = await runCli([
      'scan',
      missing,
      '--format',
      'csv',
      '--db',
      join(dir, 'scan-missing-csv.sqlite'),
      '--quiet',
    ]);
    expect(csv.code).toBe(1);
    expect(csv.stderr).toMatch(
      new RegExp(`hubcrawl: not scanned: ${missing.replaceAll('.', '\\.')}: PERMANENT .*404`),
    );
  });

  it("names why a host that never answered failed its reference, within the table's cut", async () => {
    // The table cuts a message at 160 characters: the cause must come before the request it skipped.
    const dead = `127.0.0.1:${await freePort()}`;
    const fast = join(dir, 'no-retries.yml');
    writeFileSync(fast, 'http:\n  maxRetries: 0\n');
    const r = await runCli([
      'scan',
      `${dead}/e2e/a-long-repository-name-for-the-table/of-an-image:some-tag`,
      '--config',
      fast,
      '--db',
      join(dir, 'scan-dead.sqlite'),
      '--quiet',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        ` RETRYABLE +${dead.replaceAll('.', '\\.')} answered none of the \\d+ requests before this one in this run, the last: connection failed \\(ECONNREFUSED\\); `,
      ),
    );
  });
});

describe('hubcrawl stats --json', () => {
  it('parses and counts what the crawl stored', async () => {
    const r = await runCli(['stats', '--db', db, '--json']);
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout) as {
      holds: Record<string, unknown>;
      lastRun: { id: number; status: string; stats: { itemsFailed: number } };
    };
    expect(stats.holds).toMatchObject({
      runs: 1,
      registries: 1,
      repositories: 7,
      tagObservations: 7,
      images: 7,
      debianDerivedImages: 7,
      layers: 7,
      layersAnalyzed: 7,
      layersFailed: 0,
      findings: 8,
      affectedImages: 4,
      affectedImagesFinalFs: 3,
      affectedImagesBySet: [{ iocSet: builtinSetLabel(), images: 4, finalFs: 3, finalFsUnknown: 0 }],
      iocSets: [builtinSetLabel()],
    });
    // The table shows each set's counts on one line.
    const table = (await runCli(['stats', '--db', db])).stdout;
    expect(table).toMatch(
      /^affected images of xz-cve-2024-3094@\S+ \(any \/ surviving \/ unkno.* 4 \/ 3 \/ 0$/m,
    );
    expect(stats.lastRun).toMatchObject({
      id: 1,
      command: 'crawl',
      status: 'completed',
      stats: { itemsFailed: 0 },
    });
  });

  it('says which command started the last run: crawl, scan, or neither named for an older run', async () => {
    const scanned = join(dir, 'stats-command.sqlite');
    const ref = `${demo.registry.host}/demo/multi:latest`;
    const scan = await runCli(['scan', ref, '--db', scanned]);
    expect(scan.code).toBe(0);
    // Its log names it too: a scan's run is no crawl's.
    expect(scan.stderr).toMatch(/"msg":"scan run started"/);
    expect(scan.stderr).toMatch(/"status":"completed",.*"msg":"scan run ended"/);
    const commandOf = async () => ({
      json: JSON.parse((await runCli(['stats', '--db', scanned, '--json'])).stdout).lastRun.command,
      table: (await runCli(['stats', '--db', scanned])).stdout.match(/^command +(.*)$/m)?.[1],
    });
    expect(await commandOf()).toEqual({ json: 'scan', table: 'scan' });
    // A run recorded before hubcrawl named its command: a crawl or a scan, the dataset cannot tell.
    const older = new BetterSqlite3(scanned);
    older.prepare(`UPDATE crawl_runs SET config_json = json_remove(config_json, '$.command')`).run();
    older.close();
    expect(await commandOf()).toEqual({
      json: null,
      table: 'crawl or scan (recorded before hubcrawl named it)',
    });
  });

  it('names the run whose stored stats were damaged, and prints nothing else', async () => {
    const copy = join(dir, 'damaged-stats.sqlite');
    copyFileSync(db, copy);
    const damage = new BetterSqlite3(copy);
    damage.prepare('UPDATE crawl_runs SET stats_json = ? WHERE id = 1').run('{"itemsFailed": 0');
    damage.close();
    const r = await runCli(['stats', '--db', copy, '--json']);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 3,
      stdout: '',
      stderr:
        "hubcrawl: the dataset's crawl_runs row 1 holds no JSON object in stats_json: " +
        'the file was edited or damaged; restore it from a copy, or crawl into a new dataset\n',
    });
  });
});

describe('standard output', () => {
  const commands = [
    ['report'],
    ['stats'],
    ['stats', '--json'],
    ['query', 'SELECT digest FROM layers'],
    ['query', '--format', 'csv', 'SELECT digest FROM layers'],
  ];

  it('a reader that leaves early (`| head`) ends each command with exit 0 and no stack trace', async () => {
    for (const args of [...commands.map((c) => [...c, '--db', db]), ['iocs', 'list']]) {
      const r = await runCli(args, { stdout: 'closed' });
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
  });

  it("prints a query's table cells whole, however long: they are data to copy", async () => {
    const r = await runCli(['query', '--db', db, "SELECT printf('%.300c', 'x') AS long, 1 AS n"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[2]).toBe(`${'x'.repeat(300)}  1`);
  });

  it('a full disk under `> study.csv` exits 3 saying the output is incomplete', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [...commands.map((c) => [...c, '--db', db]), ['iocs', 'list']]) {
        const r = await runCli(args, { stdout: full });
        expect({ args, code: r.code }).toEqual({ args, code: 3 });
        expect(r.stderr).toBe(
          'hubcrawl: cannot write the result to standard output (ENOSPC): what was written there is incomplete; free some space or write with --out, then run the same command again\n',
        );
      }
    } finally {
      closeSync(full);
    }
  });
});

describe('hubcrawl export', () => {
  it('writes report.csv, a CSV per table, the SQLite file and a MANIFEST.json whose sha256 values sha256sum confirms', async () => {
    const out = join(dir, 'bundle');
    const r = await runCli(['export', '--db', db, '--out', out]);
    expect(r.code).toBe(0);
    const written = files(out);
    expect(written).toContain('report.csv');
    expect(written).toContain('hubcrawl.sqlite');
    expect(written).toContain('MANIFEST.json');
    expect(written).toEqual(
      expect.arrayContaining(['tables/findings.csv', 'tables/images.csv', 'tables/layers.csv']),
    );
    const manifest = JSON.parse(readFileSync(join(out, 'MANIFEST.json'), 'utf8')) as {
      sha256: Record<string, string>;
      rowCounts: Record<string, number>;
      imagesWithFailedLayers: number;
      iocSets: Array<{ id: string; version: string; findings: number }>;
    };
    // Every file but the manifest itself is listed, and sha256sum (an outside tool) agrees on each.
    expect(Object.keys(manifest.sha256).sort()).toEqual(written.filter((f) => f !== 'MANIFEST.json'));
    const { stdout } = await execFileP('sha256sum', Object.keys(manifest.sha256), { cwd: out });
    const oracle = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => {
          const [hash, name] = l.split(/ [ *]/) as [string, string];
          return [name, hash];
        }),
    );
    expect(manifest.sha256).toEqual(oracle);
    expect(manifest.rowCounts.report).toBe(12);
    expect(manifest.imagesWithFailedLayers).toBe(0);
    expect(manifest.rowCounts.findings).toBe(8);
    // With the rows it holds now: the built-in set made all eight.
    expect(manifest.iocSets.map((s) => [`${s.id}@${s.version}`, s.findings])).toEqual([
      [builtinSetLabel(), 8],
    ]);
    const report = recordsToObjects(parseCsv(readFileSync(join(out, 'report.csv'), 'utf8')).records);
    expect(stable(report)).toEqual(stable(expectedDemoRows(demo)));
  });

  const reader = unprivilegedUser();
  it.skipIf(reader === undefined)(
    'writes its SQLite copy with a rollback journal, so a reader who cannot write its folder can query it; the WAL dataset there gets advice',
    async () => {
      const out = join(dir, 'bundle-for-shelf');
      expect((await runCli(['export', '--db', db, '--out', out])).code).toBe(0);
      // sqlite3, an outside reader, takes the journal mode from the file's header.
      const { stdout: mode } = await execFileP('sqlite3', [
        '-readonly',
        join(out, 'hubcrawl.sqlite'),
        'PRAGMA journal_mode',
      ]);
      expect(mode.trim()).toBe('delete');
      // A shelf nobody may write to (read-only media), holding the bundle's copy and the crawl's WAL dataset.
      const shelf = tempDir('shelf');
      copyFileSync(join(out, 'hubcrawl.sqlite'), join(shelf, 'published.sqlite'));
      copyFileSync(db, join(shelf, 'wal.sqlite'));
      for (const f of ['published.sqlite', 'wal.sqlite']) chmodSync(join(shelf, f), 0o444);
      chmodSync(shelf, 0o555);
      try {
        const sql = 'SELECT count(*) AS n FROM findings';
        const published = await runCli(
          ['query', '--db', join(shelf, 'published.sqlite'), '--format', 'csv', sql],
          {
            ...reader,
            cwd: shelf,
          },
        );
        expect(published.stderr).toBe('');
        expect(published.stdout).toBe('n\r\n8\r\n');
        expect(readdirSync(shelf).sort()).toEqual(['published.sqlite', 'wal.sqlite']);
        const wal = await runCli(['query', '--db', join(shelf, 'wal.sqlite'), sql], {
          ...reader,
          cwd: shelf,
        });
        expect(wal.code).toBe(2);
        expect(wal.stderr).toContain('cannot be read here: it is in WAL mode');
        expect(wal.stderr).toContain('read the copy `hubcrawl export` writes');
        expect(wal.stderr).not.toContain('query cannot write');
      } finally {
        chmodSync(shelf, 0o755);
      }
    },
  );

  it('reads every table, the report and the MANIFEST from its own SQLite copy: the counts agree with it', async () => {
    const out = join(dir, 'bundle-counts');
    expect((await runCli(['export', '--db', db, '--out', out])).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'MANIFEST.json'), 'utf8')) as {
      rowCounts: Record<string, number>;
    };
    const copy = new BetterSqlite3(join(out, 'hubcrawl.sqlite'), { readonly: true });
    try {
      for (const [table, count] of Object.entries(manifest.rowCounts)) {
        if (table === 'report') continue;
        const row = copy.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number };
        expect({ table, n: row.n }).toEqual({ table, n: count });
        const csv = parseCsv(readFileSync(join(out, 'tables', `${table}.csv`), 'utf8'));
        // The first record is the header.
        expect({ table, n: csv.records.length - 1 }).toEqual({ table, n: count });
      }
    } finally {
      copy.close();
    }
  });

  it('a bundle it cannot finish (a file-size limit) leaves nothing behind, says so, and the same command then works', async () => {
    // `ulimit -f 128`: no file may pass 64 KiB. The dataset's 32 KiB -shm fits; the SQLite copy (a page for
    // each of its tens of tables and indexes) does not, and fails part-way, as on a full disk.
    const limited = (out: string) =>
      runCli(['export', '--db', db, '--out', out], { fileSizeLimitBlocks: 128 });
    const partials = () => readdirSync(dir).filter((f) => f.includes('partial'));
    // A new folder, two levels down: neither it nor the folder above it is left.
    const fresh = join(dir, 'limited', 'bundle');
    const r = await limited(fresh);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot write the export bundle ${fresh} (`);
    expect(r.stderr).toContain(`nothing was written to ${fresh} (not created)`);
    expect(r.stderr).not.toContain('crawl resumes');
    expect(r.stderr).not.toContain('the dataset');
    expect(r.stdout).toBe('');
    expect(existsSync(join(dir, 'limited'))).toBe(false);
    expect(partials()).toEqual([]);
    // An empty folder given as --out stays empty, and so can be given again.
    const empty = join(dir, 'limited-empty');
    mkdirSync(empty);
    const again = await limited(empty);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain(`nothing was written to ${empty} (left empty as it was)`);
    expect(readdirSync(empty)).toEqual([]);
    expect(partials()).toEqual([]);
    for (const out of [fresh, empty]) {
      const ok = await runCli(['export', '--db', db, '--out', out]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'MANIFEST.json'), 'utf8')).tool).toBe('hubcrawl');
    }
    expect(partials()).toEqual([]);
  });

  it('a SIGINT while it writes takes the unfinished bundle away, exits 3 saying so, and the same command then works', async () => {
    // A copy of the dataset with 300 000 more file rows: its tables take long enough to write that the
    // signal comes while the bundle is half done.
    const big = join(dir, 'big.sqlite');
    const source = new BetterSqlite3(db, { readonly: true });
    await source.backup(big);
    source.close();
    const filler = new BetterSqlite3(big);
    filler.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
                 INSERT INTO layer_files (layer_digest, seq, path, size, mode)
                 SELECT (SELECT digest FROM layers ORDER BY digest LIMIT 1), 1000000 + i, '/filler/' || i, 1, 420 FROM n`);
    filler.close();
    const out = join(dir, 'bundle-interrupted');
    const partials = () => readdirSync(dir).filter((f) => f.includes('partial'));
    const { child, done } = startCli(['export', '--db', big, '--out', out]);
    while (partials().length === 0) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGINT');
    const r = await done;
    expect(r).toMatchObject({ code: 3, signal: null, stdout: '' });
    expect(r.stderr).toContain(`export stopped by SIGINT; nothing was written to ${out}`);
    expect(existsSync(out)).toBe(false);
    expect(partials()).toEqual([]);
    const ok = await runCli(['export', '--db', big, '--out', out]);
    expect(ok.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'MANIFEST.json'), 'utf8')) as {
      rowCounts: Record<string, number>;
    };
    expect(manifest.rowCounts.layer_files).toBeGreaterThan(300_000);
  });
});

describe('hubcrawl export tables', () => {
  it('writes a CSV of every table but the frontier, the failures log included, with its row count in the MANIFEST', async () => {
    const out = join(dir, 'bundle-tables');
    expect((await runCli(['export', '--db', db, '--out', out])).code).toBe(0);
    const copy = new BetterSqlite3(join(out, 'hubcrawl.sqlite'), { readonly: true });
    let tables: string[];
    try {
      tables = copy
        .prepare(
          `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
        )
        .pluck()
        .all() as string[];
    } finally {
      copy.close();
    }
    const csvs = readdirSync(join(out, 'tables'))
      .map((f) => f.replace(/\.csv$/, ''))
      .sort();
    expect(csvs).toContain('failures');
    expect(tables.filter((t) => t !== 'frontier')).toEqual(csvs);
    const manifest = JSON.parse(readFileSync(join(out, 'MANIFEST.json'), 'utf8')) as {
      rowCounts: Record<string, number>;
    };
    expect(manifest.rowCounts.failures).toBeTypeOf('number');
    expect(readFileSync(join(out, 'tables', 'failures.csv'), 'utf8').split('\r\n')[0]).toBe(
      'id,frontier_id,kind,key,run_id,error_code,message,retryable,at',
    );
  });
});

describe('hubcrawl iocs', () => {
  it('list shows the built-in set with its version', async () => {
    const r = await runCli(['iocs', 'list']);
    expect(r.code).toBe(0);
    const [id, version] = builtinSetLabel().split('@') as [string, string];
    expect(r.stdout).toMatch(new RegExp(`^${id} +${version.replace(/\./g, '\\.')} +\\d+ .*built-in$`, 'm'));
  });

  it('list refuses what a crawl would refuse: two sets with one id, a file posing as a built-in set', async () => {
    const file = join(dir, 'twice.json');
    writeFileSync(file, JSON.stringify(EXTRA_SET));
    const twice = await runCli(['iocs', 'list', '--ioc', file, '--ioc', file]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toBe(
      `hubcrawl: two IOC sets share the id "${EXTRA_SET.id}": ${file} and ${file}; give each set its own id, or load one of them\n`,
    );
    const builtin = JSON.parse(readFileSync(join(ROOT, 'iocs', 'xz-cve-2024-3094.json'), 'utf8'));
    const clash = join(dir, 'clash.json');
    writeFileSync(clash, JSON.stringify({ ...builtin, version: 'mine' }));
    expect((await runCli(['iocs', 'list', '--ioc', clash])).code).toBe(2);
    // As a crawl, the flag that leaves the built-in sets out lets it be listed.
    const own = await runCli(['iocs', 'list', '--no-builtin-iocs', '--ioc', clash]);
    expect(own.code).toBe(0);
    expect(own.stdout).toMatch(/^xz-cve-2024-3094 +mine /m);
    expect(own.stdout).not.toContain('built-in');
    // check validates the file alone, and says what a crawl will make of its id.
    const check = await runCli(['iocs', 'check', clash]);
    expect(check.code).toBe(0);
    expect(check.stderr).toContain('has the id of a built-in set, xz-cve-2024-3094');
  });

  it("check refuses a set with a built-in set's id and version but other rules, as the loaders do, and its advice holds", async () => {
    const builtin = JSON.parse(readFileSync(join(ROOT, 'iocs', 'xz-cve-2024-3094.json'), 'utf8'));
    const forged = join(dir, 'forged-check.json');
    writeFileSync(forged, JSON.stringify({ ...builtin, rules: builtin.rules.slice(0, 1) }));
    const check = await runCli(['iocs', 'check', forged]);
    expect(check.code).toBe(2);
    expect(check.stdout).toBe('');
    const message = `hubcrawl: IOC set ${forged} has the id and version of the built-in set ${builtinSetLabel()} but other rules; give it a version (or id) of its own, so the dataset keeps the two apart\n`;
    expect(check.stderr).toBe(message);
    const list = await runCli(['iocs', 'list', '--no-builtin-iocs', '--ioc', forged]);
    expect([list.code, list.stderr]).toEqual([2, message]);
    // A copy of the built-in set passes check, and the --no-builtin-iocs it advises does load it.
    const copy = join(dir, 'copy-check.json');
    writeFileSync(copy, JSON.stringify(builtin));
    const ok = await runCli(['iocs', 'check', copy]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('only with --no-builtin-iocs');
    const listed = await runCli(['iocs', 'list', '--no-builtin-iocs', '--ioc', copy]);
    expect(listed.code).toBe(0);
  });

  it('check accepts a valid set file and names it', async () => {
    const file = join(dir, 'extra.json');
    writeFileSync(file, JSON.stringify(EXTRA_SET));
    const r = await runCli(['iocs', 'check', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`valid IOC set ${EXTRA_SET.id}@1 with 1 rule (`);
  });

  it('check refuses an invalid set with exit 2, naming the file and the field', async () => {
    const file = join(dir, 'broken.json');
    const broken = {
      ...EXTRA_SET,
      rules: [{ id: 'bad-hash', kind: 'file-sha256', sha256: 'not-a-hash' }],
    };
    writeFileSync(file, JSON.stringify(broken));
    const r = await runCli(['iocs', 'check', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^hubcrawl: .*broken\.json: rules\[0\]\.sha256: [^\n]+\n$/);
  });
});

describe('hubcrawl crawl without a set of the study', () => {
  it('says, even with --quiet, how many findings it removed and how to get them back', async () => {
    const copy = join(dir, 'unloaded.sqlite');
    const file = join(dir, 'extra-for-crawl.json');
    writeFileSync(file, JSON.stringify(EXTRA_SET));
    const crawl = (...more: string[]) =>
      runCli(['crawl', '--catalog', demo.registry.url, '--db', copy, '--quiet', ...more]);
    const first = await crawl('--ioc', file);
    expect(first.code).toBe(0);
    expect(first.stdout).not.toContain('removed');
    // The five images on the bookworm base carry the extra set's finding; a crawl without it removes them.
    const second = await crawl();
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/, 5 findings removed of IOC sets not loaded\n$/);
    expect(second.stderr).toBe(
      'hubcrawl: 5 findings of IOC sets not loaded in this crawl were removed from the images it matched again; load every set of the study each time (--ioc, or iocFiles in the config file), then run `hubcrawl rematch` with them to restore the findings\n',
    );
  });
});

describe('hubcrawl rematch', () => {
  it('--ioc FILE adds the findings of a new set without network (the registry is stopped first)', async () => {
    await demo.registry.stop();
    registryStopped = true;
    const file = join(dir, 'extra.json');
    writeFileSync(file, JSON.stringify(EXTRA_SET));
    const r = await runCli(['rematch', '--db', db, '--ioc', file, '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = await runCli(['report', '--db', db]);
    const rows = recordsToObjects(parseCsv(report.stdout).records);
    const added = rows.filter((row) => row.ioc_set === `${EXTRA_SET.id}@1`);
    // The five images on the bookworm base: clean, app-one, app-two, sig-lib, removed.
    expect(added.map((row) => row.repository).sort()).toEqual([
      'demo/app-one',
      'demo/app-two',
      'demo/debian-clean',
      'demo/removed',
      'demo/sig-lib',
    ]);
    for (const row of added) {
      expect(row).toMatchObject({
        rule_id: 'liblzma5-5.4.1-0.2',
        evidence_kind: 'dpkg-version',
        path: '/var/lib/dpkg/status',
        evidence: 'liblzma5=5.4.1-0.2',
        in_final_fs: 'true',
      });
    }
    // The built-in set's evidence is still all there.
    expect(stable(rows.filter((row) => row.ioc_set === builtinSetLabel()))).toEqual(
      stable(expectedDemoRows(demo)),
    );
  });

  it('says what new rules miss in layers analyzed for other rules: files not hashed, bytes not scanned', async () => {
    // On a copy: the new set's findings would change what the tests below count.
    const copy = join(dir, 'gaps.sqlite');
    copyFileSync(db, copy);
    const file = join(dir, 'gaps.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'e2e-new-rules',
        version: '1',
        title: 'A file rule and a signature the crawl did not know',
        references: [],
        rules: [
          { id: 'tool', kind: 'file-sha256', sha256: 'a'.repeat(64), paths: ['/opt/app/**'] },
          { id: 'marker', kind: 'byte-signature', hex: 'de ad be ef', paths: ['/opt/app/**'] },
        ],
      }),
    );
    const r = await runCli(['rematch', '--db', copy, '--ioc', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'layers were analyzed when fewer files were hashed: new file-sha256/file-md5 rules match only the files hashed then',
    );
    expect(r.stderr).toContain('layers were not scanned for some of these byte-signature patterns');
    // The old catch-all, which named neither cause and offered --hash-all-files for signatures too.
    expect(r.stderr).not.toContain('another candidate selection');
  });

  it('marks its run failed, naming the damaged row, when a stored fact cannot be read part way', async () => {
    const copy = join(dir, 'damaged.sqlite');
    copyFileSync(db, copy);
    const damage = new BetterSqlite3(copy);
    // The os-release row of a layer some image reaches only after another image is matched: the damage
    // stops the rematch part way, with that image matched anew and the rest left as they were.
    const images = damage.prepare('SELECT digest FROM images ORDER BY digest').pluck().all() as string[];
    const firstLayerOf = (image: string) =>
      damage
        .prepare(
          `SELECT il.layer_digest FROM image_layers il JOIN layer_os_release o ON o.layer_digest = il.layer_digest
            WHERE il.image_digest = ? ORDER BY il.position LIMIT 1`,
        )
        .pluck()
        .get(image) as string | undefined;
    const first = firstLayerOf(images[0] as string);
    const victim = images.map(firstLayerOf).find((l) => l !== undefined && l !== first) as string;
    const stoppedAt = images.findIndex((i) => firstLayerOf(i) === victim);
    expect(stoppedAt).toBeGreaterThan(0);
    damage
      .prepare('UPDATE layer_os_release SET fields_json = ? WHERE layer_digest = ?')
      .run('{"ID": "deb', victim);
    damage.close();

    const r = await runCli(['rematch', '--db', copy, '--quiet']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      `re-matched ${stoppedAt} image${stoppedAt === 1 ? '' : 's'} and left the rest with their earlier findings`,
    );
    expect(r.stderr).toContain(
      `hubcrawl: the dataset's layer_os_release row of layer ${victim} (/usr/lib/os-release) holds no JSON object of strings in fields_json: ` +
        'the file was edited or damaged; restore it from a copy, or crawl into a new dataset\n',
    );
    const after = new BetterSqlite3(copy, { readonly: true });
    const run = after
      .prepare('SELECT id, status, finished_at, stats_json FROM crawl_runs ORDER BY id DESC LIMIT 1')
      .get() as {
      id: number;
      status: string;
      finished_at: string | null;
      stats_json: string;
    };
    expect(run.status).toBe('failed');
    expect(run.finished_at).not.toBeNull();
    expect(JSON.parse(run.stats_json)).toMatchObject({
      rematch: true,
      imagesMatched: stoppedAt,
      imagesNotReached: images.length - stoppedAt,
      imagesWithFailedLayers: 0,
      imagesIncomplete: 0,
      error: expect.stringContaining(`layer_os_release row of layer ${victim}`),
    });
    // The images before the damaged one carry the failed run's findings; the others keep the crawl's.
    const matchedBy = after
      .prepare('SELECT DISTINCT image_digest FROM findings WHERE run_id = ? ORDER BY image_digest')
      .pluck()
      .all(run.id) as string[];
    expect(matchedBy.every((d) => images.indexOf(d) < stoppedAt)).toBe(true);
    expect(matchedBy.length).toBeGreaterThan(0);
    after.close();
  });

  it('says so when a rematch without a set removes its findings, which the next rematch with it restores', async () => {
    const file = join(dir, 'extra.json');
    const [id] = builtinSetLabel().split('@');
    const count = await runCli([
      'query',
      '--db',
      db,
      '--format',
      'json',
      `SELECT count(*) AS n FROM findings WHERE ioc_set_id = '${id}'`,
    ]);
    const removed = (JSON.parse(count.stdout) as Array<{ n: number }>)[0]!.n;
    expect(removed).toBeGreaterThan(0);
    const notice =
      `hubcrawl: ${removed} findings of IOC sets not loaded in this rematch were removed from the images it matched again; ` +
      'load every set of the study each time (--ioc, or iocFiles in the config file), then run `hubcrawl rematch` with them to restore the findings\n';
    // With --quiet (on a copy: the run below removes them for good), that line alone, as a crawl says it.
    const quietCopy = join(dir, 'removed-quiet.sqlite');
    copyFileSync(db, quietCopy);
    const quiet = await runCli(['rematch', '--db', quietCopy, '--no-builtin-iocs', '--ioc', file, '--quiet']);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toMatch(new RegExp(`; removed ${removed} findings of IOC sets not loaded now\\n$`));
    expect(quiet.stderr).toBe(notice);
    const without = await runCli(['rematch', '--db', db, '--no-builtin-iocs', '--ioc', file]);
    expect(without.code).toBe(0);
    expect(without.stdout).toMatch(
      new RegExp(`; removed ${removed} findings of IOC sets not loaded now\\n$`),
    );
    expect(without.stderr).toContain('findings of IOC sets not loaded now were removed');
    expect(without.stderr).toContain(builtinSetLabel());
    expect(without.stderr.endsWith(notice)).toBe(true);
    // stats says the last run was a rematch, with its counters, not a crawl's left blank.
    const stats = await runCli(['stats', '--db', db]);
    const lastRun = stats.stdout.slice(stats.stdout.indexOf('\nLast run\n'));
    expect(lastRun).toMatch(/^command +rematch$/m);
    expect(lastRun).toMatch(new RegExp(`^findings removed of IOC sets not loaded +${removed}$`, 'm'));
    expect(lastRun).toMatch(/^images re-matched +[1-9]\d*$/m);
    for (const crawlOnly of ['repositories', 'tags resolved', 'layer bytes downloaded', 'failed items']) {
      expect(lastRun).not.toContain(crawlOnly);
    }
    const json = JSON.parse((await runCli(['stats', '--db', db, '--json'])).stdout);
    expect(json.lastRun).toMatchObject({ command: 'rematch', stats: { rematch: true } });
    const back = await runCli(['rematch', '--db', db, '--ioc', file, '--quiet']);
    expect(back.code).toBe(0);
    const rows = recordsToObjects(parseCsv((await runCli(['report', '--db', db])).stdout).records);
    expect(stable(rows.filter((row) => row.ioc_set === builtinSetLabel()))).toEqual(
      stable(expectedDemoRows(demo)),
    );
  });

  it('warns when a set comes back with other rules under the same version, not when it comes back unchanged', async () => {
    const copy = join(dir, 'edited.sqlite');
    copyFileSync(db, copy);
    const file = join(dir, 'edited.json');
    const rematch = async (rules: unknown[]) => {
      writeFileSync(file, JSON.stringify({ ...EXTRA_SET, rules }));
      const r = await runCli(['rematch', '--db', copy, '--ioc', file]);
      expect(r.code).toBe(0);
      return r.stderr;
    };
    const warning =
      'IOC sets loaded with other rules than the dataset stored under the same id and version: their findings are replaced';
    expect(await rematch(EXTRA_SET.rules)).not.toContain(warning);
    const edited = await rematch([{ ...EXTRA_SET.rules[0], versions: ['5.4.1-0.2', '5.6.1-1'] }]);
    expect(edited).toContain(warning);
    expect(edited).toContain(`"sets":["${EXTRA_SET.id}@${EXTRA_SET.version}"]`);
  });

  it("does not let a rule edited to another byte pattern take over the old pattern's stored hits", async () => {
    const builtin = JSON.parse(readFileSync(join(ROOT, 'iocs', 'xz-cve-2024-3094.json'), 'utf8'));
    /** The built-in set as a new version, each signature rule's hex changed by `hex`. */
    const version = (name: string, hex: (h: string) => string) => {
      const file = join(dir, `${name}.json`);
      const rules = builtin.rules.map((r: { kind: string; hex?: string }) =>
        r.kind === 'byte-signature' ? { ...r, hex: hex(r.hex as string) } : r,
      );
      writeFileSync(file, JSON.stringify({ ...builtin, version: name, rules }));
      return file;
    };
    const signatureRows = async (label: string) => {
      const rows = recordsToObjects(parseCsv((await runCli(['report', '--db', db])).stdout).records);
      return rows.filter((row) => row.ioc_set === label && row.evidence_kind === 'byte-signature');
    };
    // Control: the same patterns written otherwise (upper case) are the same patterns.
    const same = version('same-patterns', (h) => h.toUpperCase());
    expect((await runCli(['rematch', '--db', db, '--no-builtin-iocs', '--ioc', same, '--quiet'])).code).toBe(
      0,
    );
    expect(await signatureRows(`${builtin.id}@same-patterns`)).not.toEqual([]);
    // Other bytes: the stored facts cannot say whether they are in the file, so no finding is made up.
    const other = version('other-patterns', () => 'aa bb cc dd ee ff');
    expect((await runCli(['rematch', '--db', db, '--no-builtin-iocs', '--ioc', other, '--quiet'])).code).toBe(
      0,
    );
    expect(await signatureRows(`${builtin.id}@other-patterns`)).toEqual([]);
    expect((await runCli(['rematch', '--db', db, '--quiet'])).code).toBe(0);
    expect(await signatureRows(builtinSetLabel())).not.toEqual([]);

    // The same on facts from before schema 4/5, as an upgraded dataset holds them: hits without their
    // pattern, layers without their selection's definition. Each run's sets give the definition back
    // (backfillSelections), and with it each hit's pattern.
    const old = new BetterSqlite3(db);
    old.exec(`DELETE FROM selections;
              UPDATE layer_signature_hits SET hex = NULL, in_elf = NULL, scanned_path = NULL;`);
    old.close();
    const other2 = version('other-patterns-2', () => 'aa bb cc dd ee ff');
    expect(
      (await runCli(['rematch', '--db', db, '--no-builtin-iocs', '--ioc', other2, '--quiet'])).code,
    ).toBe(0);
    expect(await signatureRows(`${builtin.id}@other-patterns-2`)).toEqual([]);
    expect((await runCli(['rematch', '--db', db, '--quiet'])).code).toBe(0);
    expect(await signatureRows(builtinSetLabel())).not.toEqual([]);
  });

  it('refuses a missing or empty dataset with exit 2, as report does, and creates no file', async () => {
    const typo = join(dir, 'typo.sqlite');
    const missing = await runCli(['rematch', '--db', typo]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe(
      `hubcrawl: no dataset at ${typo}; run \`hubcrawl crawl\` first or check the path\n`,
    );
    expect(readdirSync(dir).filter((f) => f.startsWith('typo.sqlite'))).toEqual([]);
    const empty = join(dir, 'empty.sqlite');
    writeFileSync(empty, '');
    const r = await runCli(['rematch', '--db', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no dataset at ${empty} (an empty SQLite file)`);
    expect(readFileSync(empty).length).toBe(0);
  });

  it("refuses a file that claims the built-in set's id and version with other rules, before touching the dataset", async () => {
    const builtin = JSON.parse(readFileSync(join(ROOT, 'iocs', 'xz-cve-2024-3094.json'), 'utf8'));
    const forged = join(dir, 'forged.json');
    writeFileSync(forged, JSON.stringify({ ...builtin, rules: builtin.rules.slice(0, 1) }));
    const r = await runCli(['rematch', '--db', db, '--no-builtin-iocs', '--ioc', forged]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `has the id and version of the built-in set ${builtinSetLabel()} but other rules; give it a version (or id) of its own`,
    );
    const same = join(dir, 'copy.json');
    writeFileSync(same, JSON.stringify(builtin));
    const copy = await runCli(['rematch', '--db', db, '--no-builtin-iocs', '--ioc', same, '--quiet']);
    expect(copy.code).toBe(0);
  });
});
