/**
 * Exit codes and error messages as a script or a cron job sees them: 1 when some items failed
 * (the crawl still finishes the rest), 2 for usage and config errors, one sentence without a stack
 * unless --log-level debug.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { blobOf, buildImage, MEDIA_TYPES, sha256 } from '../../scripts/lib/image-builder.js';
import { pushImage, registryFetch } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { buildCliOnce, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';
import { parseCsv } from './helpers/csv.js';
import { recordsToObjects } from './helpers/demo.js';

let registry: RunningRegistry;
let dir: string;
let missingLayer: string;
let corruptLayer: string;

beforeAll(async () => {
  dir = tempDir('exit');
  const setup = async () => {
    registry = await startRegistry({ auth: 'none', installIfMissing: true });
    // An affected image that must still be crawled while its neighbours fail.
    const good = await buildImage({
      layers: [{ entries: debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }) }],
    });
    await pushImage(registry, 'e2e/good', '1', good);
    // gzip magic, then bytes that are no deflate stream: the registry stores it, the analyzer must refuse it.
    const garbage = Buffer.from(`1f8b0800${'de'.repeat(200)}`, 'hex');
    const corrupt = await buildImage({
      layers: [blobOf(garbage, MEDIA_TYPES.dockerLayerGzip, sha256('not a tar'))],
    });
    corruptLayer = corrupt.layers[0]!.digest;
    await pushImage(registry, 'e2e/corrupt', '1', corrupt);
    // A manifest whose layer the registry no longer has (deleted through the registry's API).
    const gone = await buildImage({
      layers: [{ entries: [{ type: 'file', path: 'etc/e2e-gone', content: 'deleted after push\n' }] }],
    });
    missingLayer = gone.layers[0]!.digest;
    await pushImage(registry, 'e2e/missing', '1', gone);
    const del = await registryFetch(
      registry,
      'e2e/missing',
      `${registry.url}/v2/e2e/missing/blobs/${missingLayer}`,
      { method: 'DELETE' },
    );
    if (del.status !== 202) throw new Error(`blob DELETE answered ${del.status}`);
  };
  await settle(setup(), buildCliOnce());
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  removeTempDirs();
});

describe('exit code 1: finished, but some items failed', () => {
  it('a corrupt layer and a deleted layer fail their items, the crawl finishes the good image and exits 1', async () => {
    const db = join(dir, 'partial.sqlite');
    const r = await runCli(['crawl', '--catalog', registry.url, '--db', db, '--log-level', 'warn']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^run 1 completed-with-failures: .* 2 failed items\n$/);
    // The failures are logged (JSON on stderr) with the item that failed.
    expect(r.stderr).toContain(corruptLayer.slice(7, 19));
    expect(r.stderr).toContain(missingLayer.slice(7, 19));
    const failed = await runCli([
      'query',
      '--db',
      db,
      '--format',
      'json',
      `SELECT digest, status FROM layers WHERE status <> 'analyzed' ORDER BY digest`,
    ]);
    expect(JSON.parse(failed.stdout)).toEqual(
      [corruptLayer, missingLayer].sort().map((digest) => ({ digest, status: 'failed' })),
    );
    const report = await runCli(['report', '--db', db]);
    const repos = new Set(recordsToObjects(parseCsv(report.stdout).records).map((row) => row.repository));
    expect([...repos]).toEqual(['e2e/good']);
    // Their other layers hold no evidence, so they are not in the CSV, yet not known clean: the report
    // says so beside it.
    expect(report.code).toBe(0);
    expect(report.stderr).toMatch(/^hubcrawl: 2 images have a layer that failed analysis: /m);
    expect(report.stderr).toMatch(/ Without a row in this report, though not known clean: 2\./);
  });
});

describe('layers whose --max-attempts are spent', () => {
  it('later crawls exit 0 but say how many layers failed for good, on stdout and (even with --quiet) stderr; stats counts them', async () => {
    const db = join(dir, 'spent.sqlite');
    const crawl = () =>
      runCli(['crawl', '--catalog', registry.url, '--max-attempts', '1', '--db', db, '--quiet']);
    const first = await crawl();
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/^run 1 completed-with-failures: .* 2 failed items\n$/);
    // Even with --quiet, stderr names each failed item and why: the log lines that say it are hidden.
    expect(first.stderr).toMatch(
      /^hubcrawl: 2 failed items in run 1 \(every attempt is in the failures table\):\n( {2}layer sha256:[0-9a-f]{64}: [A-Z_]+ [^\n]+\n){2}$/,
    );
    for (const layer of [corruptLayer, missingLayer]) expect(first.stderr).toContain(`  layer ${layer}: `);
    const second = await crawl();
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(
      /^run 2 completed: .* 0 failed items, 2 layers failed for good in earlier runs\n$/,
    );
    expect(second.stderr).toMatch(
      /^hubcrawl: 2 layers of this run's images failed analysis in earlier runs, with no attempts left \(--max-attempts 1\): [^\n]+\n$/,
    );
    const json = JSON.parse((await runCli(['stats', '--db', db, '--json'])).stdout);
    expect(json.holds.layersFailedForGood).toBe(2);
    expect((await runCli(['stats', '--db', db])).stdout).toMatch(/^layersFailedForGood +2$/m);
    // A rematch (its config holds the default --max-attempts 3) is no crawl: the count stays the crawl's.
    expect((await runCli(['rematch', '--db', db, '--quiet'])).code).toBe(0);
    expect(JSON.parse((await runCli(['stats', '--db', db, '--json'])).stdout).holds.layersFailedForGood).toBe(
      2,
    );
    // With attempts left, the layers are tried again and counted as this run's failed items instead.
    const more = await runCli([
      'crawl',
      '--catalog',
      registry.url,
      '--max-attempts',
      '2',
      '--db',
      db,
      '--quiet',
    ]);
    expect(more.code).toBe(1);
    expect(more.stdout).toMatch(/^run 4 completed-with-failures: .* 2 failed items\n$/);
    // Said as this run's failed items, not as layers failed for good in earlier runs.
    expect(more.stderr).toMatch(
      /^hubcrawl: 2 failed items in run 4 \(every attempt is in the failures table\):\n/,
    );
    expect(more.stderr).not.toMatch(/earlier runs/);
  });
});

describe('exit code 2: usage and config errors', () => {
  it('an unknown flag exits 2 with one hubcrawl: line that points at --help', async () => {
    const r = await runCli(['crawl', '--imagez', 'debian:12', '--db', join(dir, 'x.sqlite')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "hubcrawl: unknown option '--imagez' (Did you mean --image?); run with --help for usage\n",
    );
  });

  it('a bad --format choice and a misspelt flag with a suggestion are one hubcrawl: line each', async () => {
    const format = await runCli(['report', '--format', 'xml', '--db', join(dir, 'x.sqlite')]);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(
      /^hubcrawl: option '--format <format>' argument 'xml' is invalid\. Allowed choices are csv, jsonl; run with --help for usage\n$/,
    );
    const typo = await runCli(['stats', '--quite', '--db', join(dir, 'x.sqlite')]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(
      /^hubcrawl: unknown option '--quite' \(Did you mean --quiet\?\); run with --help for usage\n$/,
    );
  });

  it('an unquoted query statement and a config file given to a reading command get a hint', async () => {
    const db = join(dir, 'x.sqlite');
    const sql = await runCli(['query', '--db', db, 'SELECT', 'digest', 'FROM', 'images']);
    expect({ code: sql.code, stdout: sql.stdout, stderr: sql.stderr }).toEqual({
      code: 2,
      stdout: '',
      stderr:
        "hubcrawl: too many arguments for 'query'. Expected 1 argument but got 4; quote the SQL statement, " +
        'so that the shell passes it as one argument; run with --help for usage\n',
    });
    for (const [cmd, flag] of [
      ['report', '--config'],
      ['stats', '-c'],
      ['query', '--config'],
      ['export', '--config=study.yml'],
    ] as const) {
      // export without its --out: the misplaced config file is what to mend first.
      const r = await runCli([cmd, flag, ...(flag.includes('=') ? [] : ['study.yml']), '--db', db]);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 2,
        stdout: '',
        stderr:
          `hubcrawl: unknown option '${flag}'; ${cmd} reads the dataset given with --db; ` +
          'config files are for crawl, scan and rematch; run with --help for usage\n',
      });
    }
    const noOut = await runCli(['export', '--db', db]);
    expect({ code: noOut.code, stdout: noOut.stdout, stderr: noOut.stderr }).toEqual({
      code: 2,
      stdout: '',
      stderr: 'hubcrawl: export needs --out <dir>, a new or empty folder for the bundle\n',
    });
  });

  it('bare hubcrawl, like bare hubcrawl iocs, is a usage error: the help on stderr, exit 2', async () => {
    for (const args of [[], ['iocs']]) {
      const r = await runCli(args);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr).toMatch(
        new RegExp(`^Usage: hubcrawl${args.length ? ' iocs' : ''} \\[options\\] \\[command\\]\\n`),
      );
    }
  });

  it('an IOC set file that starts with a UTF-8 byte order mark is read as without it', async () => {
    const set = {
      id: 'bom-set',
      version: '1',
      title: 'BOM',
      references: [],
      rules: [{ id: 'r', kind: 'file-md5', md5: 'b'.repeat(32) }],
    };
    const file = join(dir, 'bom.json');
    writeFileSync(file, `\uFEFF${JSON.stringify(set, null, 2)}\r\n`);
    const r = await runCli(['iocs', 'check', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: valid IOC set bom-set@1 with 1 rule (file-md5:1)\n`);
  });

  it('an IOC set file that is not JSON gets one readable line, however the text near the error is laid out', async () => {
    const file = join(dir, 'broken.json');
    // V8 quotes the text around an unexpected token, line ends included.
    writeFileSync(file, '{\n  "id": x\n}\n');
    const r = await runCli(['iocs', 'check', file]);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith(`hubcrawl: ${file}: not valid JSON (`)).toBe(true);
    expect(r.stderr.endsWith(')\n')).toBe(true);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('a crawl without seeds exits 2 and names the seed flags', async () => {
    const r = await runCli(['crawl', '--db', join(dir, 'x.sqlite')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hubcrawl: nothing to crawl: .*--image.*--catalog[^\n]*\n$/);
  });

  it('a --platform that is not os/arch exits 2 and says what is expected', async () => {
    const r = await runCli([
      'crawl',
      '--image',
      `${registry.host}/e2e/good:1`,
      '--platform',
      'amd64',
      '--db',
      join(dir, 'x.sqlite'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid settings: --platform: platform "amd64"');
    expect(r.stderr).toContain('os/arch');
  });

  it('a config file with a misspelt field exits 2, naming the file and the field', async () => {
    const file = join(dir, 'study.yml');
    writeFileSync(file, `db: study.sqlite\nseeds:\n  imagez:\n    - ${registry.host}/e2e/good:1\n`);
    const r = await runCli(['crawl', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(file);
    // One sentence naming the field in full (the section and the unknown key) and the one meant.
    expect(r.stderr).toMatch(
      /^hubcrawl: invalid config file [^\n]*study\.yml: seeds\.imagez: unknown setting \(did you mean seeds\.images\?\)\n$/,
    );
  });
});

describe('a usage error found as the crawl starts', () => {
  it('starts no run: the next crawl of the dataset is a fresh run 1, not a resumed phantom', async () => {
    const db = join(dir, 'typo.sqlite');
    const bad = await runCli(['crawl', '--image', 'Not!A/Reference', '--db', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/hubcrawl: seed image "Not!A\/Reference": [^\n]+\n$/);
    expect(bad.stderr).not.toContain('crawl run started');
    const good = await runCli(['crawl', '--image', `${registry.host}/e2e/good:1`, '--db', db, '--quiet']);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^run 1 completed: /);
  });

  it('in the Docker config file starts no run either', async () => {
    const db = join(dir, 'docker-config.sqlite');
    const file = join(dir, 'docker-config.json');
    writeFileSync(file, '{ "auths": ');
    const bad = await runCli([
      'crawl',
      '--image',
      `${registry.host}/e2e/good:1`,
      '--docker-config',
      file,
      '--db',
      db,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/hubcrawl: Docker config [^\n]*docker-config\.json[^\n]*\n$/);
    const good = await runCli(['crawl', '--image', `${registry.host}/e2e/good:1`, '--db', db, '--quiet']);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^run 1 completed: /);
  });
});

describe('error messages', () => {
  it('are one sentence on stderr, without a stack, by default', async () => {
    const r = await runCli(['report', '--db', join(dir, 'no-such-dataset.sqlite')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hubcrawl: no dataset at [^\n]+\n$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('carry the stack with --log-level debug', async () => {
    const r = await runCli(['report', '--db', join(dir, 'no-such-dataset.sqlite'), '--log-level', 'debug']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hubcrawl: no dataset at [^\n]+\n/);
    expect(r.stderr).toMatch(/\n\s+at \S+ \(file:\/\/[^\n]+dist\/[^\n]+\.js:\d+:\d+\)/);
  });
});
