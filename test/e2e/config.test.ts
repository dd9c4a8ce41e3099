/**
 * Settings as a study folder uses them: a config file whose relative paths resolve from its own
 * folder, flags over environment over the file, and HUBCRAWL_DB naming the dataset for every command.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { buildCliOnce, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';
import { REPORT_HEADER } from './helpers/demo.js';

let registry: RunningRegistry;
let dir: string;
let image: string;

beforeAll(async () => {
  dir = tempDir('config');
  const setup = async () => {
    registry = await startRegistry({ auth: 'none', installIfMissing: true });
    const clean = await buildImage({ layers: [{ entries: debianBaseEntries({ codename: 'bookworm' }) }] });
    await pushImage(registry, 'study/clean', '1', clean);
    // A tag on which a pattern with nested quantifiers backtracks exponentially (2^41 steps).
    await pushImage(registry, 'study/long-tags', `${'a'.repeat(41)}b`, clean);
    image = `${registry.host}/study/clean:1`;
  };
  await settle(setup(), buildCliOnce());
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  removeTempDirs();
});

/** A study folder: config.yml with a relative db path and a relative seed file. */
function studyFolder(name: string, extra = ''): { folder: string; config: string } {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'seeds.txt'), `# the study's images\n${image}\n`);
  const config = join(folder, 'config.yml');
  writeFileSync(config, `db: data/study.sqlite\nseeds:\n  files:\n    - seeds.txt\n${extra}`);
  mkdirSync(join(folder, 'data'), { recursive: true });
  return { folder, config };
}

describe('a config file', () => {
  it("resolves its relative db and seed-file paths from the file's folder, whatever the working directory", async () => {
    const { folder, config } = studyFolder('moved');
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    const r = await runCli(['crawl', '--config', config, '--quiet'], { cwd: elsewhere });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^run 1 completed: 1 image, 1 layer analyzed/);
    expect(existsSync(join(folder, 'data', 'study.sqlite'))).toBe(true);
    expect(existsSync(join(elsewhere, 'data'))).toBe(false);
  });

  it('gives a report of only the header line when no image is affected', async () => {
    const r = await runCli(['report', '--db', join(dir, 'moved', 'data', 'study.sqlite')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${REPORT_HEADER}\r\n`);
  });
});

describe('a --tags pattern', () => {
  it('with nested quantifiers does not hang on a long tag (V8 bounds the backtracking)', async () => {
    const r = await runCli(
      [
        'crawl',
        '--repo',
        `${registry.host}/study/long-tags`,
        '--tags',
        '^(a+)+$',
        '--db',
        join(dir, 'tags.sqlite'),
        '--quiet',
      ],
      // An upper bound so a hang fails the test instead of the suite; not a performance threshold.
      { killAfterMs: 60_000 },
    );
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^run 1 completed: 0 images/);
  });
});

describe('settings precedence', () => {
  it('HUBCRAWL_DB overrides the file, and --db overrides both', async () => {
    const { folder, config } = studyFolder('precedence');
    const fromEnv = join(dir, 'from-env.sqlite');
    const fromFlag = join(dir, 'from-flag.sqlite');
    const env = { HUBCRAWL_DB: fromEnv };
    const a = await runCli(['crawl', '--config', config, '--quiet'], { env });
    expect(a.code).toBe(0);
    expect(existsSync(fromEnv)).toBe(true);
    expect(existsSync(join(folder, 'data', 'study.sqlite'))).toBe(false);
    const b = await runCli(['crawl', '--config', config, '--db', fromFlag, '--quiet'], { env });
    expect(b.code).toBe(0);
    expect(existsSync(fromFlag)).toBe(true);
  });

  it('HUBCRAWL_DB names the dataset for report, query, stats and export as it does for crawl', async () => {
    const db = join(dir, 'env-everywhere.sqlite');
    const env = { HUBCRAWL_DB: db };
    const cwd = join(dir, 'empty-cwd');
    mkdirSync(cwd);
    const crawl = await runCli(['crawl', '--image', image, '--quiet'], { env, cwd });
    expect(crawl.code).toBe(0);
    expect(existsSync(db)).toBe(true);
    const [report, query, stats, exported] = await Promise.all([
      runCli(['report'], { env, cwd }),
      runCli(['query', '--format', 'csv', 'SELECT count(*) AS images FROM images'], { env, cwd }),
      runCli(['stats', '--json'], { env, cwd }),
      runCli(['export', '--out', join(dir, 'env-bundle')], { env, cwd }),
    ]);
    expect([report.stderr, query.stderr, stats.stderr, exported.stderr]).toEqual(['', '', '', '']);
    expect(report.stdout).toBe(`${REPORT_HEADER}\r\n`);
    expect(query.stdout).toBe('images\r\n1\r\n');
    expect((JSON.parse(stats.stdout) as { holds: { images: number } }).holds.images).toBe(1);
    expect(exported.code).toBe(0);
    expect(existsSync(join(cwd, 'hubcrawl.sqlite'))).toBe(false);
  });
});
