/**
 * Options and settings that used to be taken silently or wrongly, as a user meets them with the built CLI:
 * a uname architecture name in --platform, a HUBCRAWL_* variable with a bad value, a negative number in
 * CSV, an export folder where no folder can be made (/proc), IOC globs that can never match, a password
 * written into a URL, a named Docker config that does not exist, half an environment credential pair.
 * No registry is needed: the dataset comes from a crawl of a port nothing listens on.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCliOnce, removeTempDirs, runCli, tempDir } from './helpers/cli.js';

let dir: string;
let db: string;
/** A config file that makes a crawl give up on a dead host at once (no retries). */
let fast: string;
/** A seed that fails at once: nothing listens on port 9 of loopback. */
const DEAD_SEED = '127.0.0.1:9/e2e/none:1';

beforeAll(async () => {
  await buildCliOnce();
  dir = tempDir('option-checks');
  db = join(dir, 'd.sqlite');
  fast = join(dir, 'fast.yml');
  writeFileSync(fast, 'http:\n  maxRetries: 0\n');
  const crawl = await runCli(['crawl', '--config', fast, '--image', DEAD_SEED, '--db', db, '--quiet']);
  if (crawl.code !== 1) throw new Error(`setup crawl: expected exit 1, got ${crawl.code}: ${crawl.stderr}`);
}, 180_000);

afterAll(() => {
  removeTempDirs();
});

describe('--platform with a uname architecture name', () => {
  it.each([
    ['linux/x86_64', 'use linux/amd64'],
    ['linux/aarch64', 'use linux/arm64'],
    ['linux/i686', 'use linux/386'],
    ['linux/armv7l', 'use linux/arm/v7'],
  ])('crawl --platform %s exits 2 and names the GOARCH name', async (platform, fix) => {
    const r = await runCli([
      'crawl',
      '--config',
      fast,
      '--image',
      DEAD_SEED,
      '--platform',
      platform,
      '--db',
      join(dir, 'p.sqlite'),
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    // Named as the flag the user wrote, not the config field it sets.
    expect(r.stderr).toContain(`hubcrawl: invalid settings: --platform: platform "${platform}"`);
    expect(r.stderr).toContain(fix);
    expect(r.stderr).toMatch(/; run with --help for usage\n$/);
  });

  it('is refused in a config file too, naming the file and the field', async () => {
    const file = join(dir, 'platforms.yml');
    writeFileSync(file, `http:\n  maxRetries: 0\nfilters:\n  platforms: [linux/amd64, linux/x86_64]\n`);
    const r = await runCli(['scan', DEAD_SEED, '--config', file, '--db', join(dir, 'p.sqlite')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: filters.platforms[1]: platform "linux/x86_64"`);
    expect(r.stderr).toContain('use linux/amd64');
  });
});

describe('HUBCRAWL_* variables with a bad value', () => {
  const env = { HUBCRAWL_LOG_LEVEL: 'bogus' };

  it('crawl exits 2 naming the variable, not the flags', async () => {
    const r = await runCli(['crawl', '--image', DEAD_SEED, '--db', join(dir, 'e.sqlite')], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('environment variable HUBCRAWL_LOG_LEVEL');
    expect(r.stderr).not.toContain('flags');
  });

  it.each([
    ['stats', []],
    ['query', ['SELECT 1']],
    ['report', []],
    ['export', ['--out', 'bundle-env']],
  ])('%s refuses it as crawl does', async (cmd, args) => {
    const r = await runCli([cmd, '--db', db, ...args], { env, cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('environment variable HUBCRAWL_LOG_LEVEL');
  });
});

describe('CSV numbers', () => {
  it('query --format csv writes a negative number as a number and neutralizes text only', async () => {
    const r = await runCli([
      'query',
      '--db',
      db,
      '--format',
      'csv',
      "SELECT -1 AS n, -2.5 AS r, '-1' AS t, '=1+1' AS f",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("n,r,t,f\r\n-1,-2.5,'-1,'=1+1\r\n");
  });
});

describe('export --out where no folder can be made', () => {
  it.each(['/proc/hubcrawl-export', '/proc/hubcrawl-export/a/b'])(
    'export --out %s exits 2 at once instead of spinning',
    async (out) => {
      const r = await runCli(['export', '--db', db, '--out', out], { killAfterMs: 20_000 });
      expect(r.signal).toBeNull();
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`cannot create the export folder ${out} (`);
      expect(r.stderr).toContain('/proc');
    },
    30_000,
  );

  it('names a file in the way above the folder', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await runCli(['export', '--db', db, '--out', join(file, 'sub')], { killAfterMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file} is not a folder`);
  });

  it('still creates missing folders above a new one', async () => {
    const out = join(dir, 'deep', 'er', 'bundle');
    const r = await runCli(['export', '--db', db, '--out', out]);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'MANIFEST.json'), 'utf8')).tool).toBe('hubcrawl');
  });
});

describe('credentials that would leak or be ignored', () => {
  it.each([
    ['--catalog', 'http://alice:CaTaLoGpw@127.0.0.1:9'],
    ['--registry-mirror', 'http://alice:CaTaLoGpw@127.0.0.1:9'],
    ['--hub-api', 'http://alice:CaTaLoGpw@127.0.0.1:9'],
  ])(
    '%s with a password in the URL exits 2 before anything is stored, and never prints it',
    async (flag, url) => {
      const fresh = join(dir, `userinfo${flag}.sqlite`);
      const r = await runCli(['crawl', flag, url, '--image', DEAD_SEED, '--db', fresh]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('must not carry a user name or password');
      expect(r.stderr + r.stdout).not.toContain('CaTaLoGpw');
      expect(existsSync(fresh)).toBe(false);
    },
  );

  it('a --docker-config that does not exist exits 2 instead of crawling anonymously', async () => {
    const r = await runCli([
      'crawl',
      '--docker-config',
      join(dir, 'nope.json'),
      '--image',
      DEAD_SEED,
      '--db',
      db,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Docker config ${join(dir, 'nope.json')} does not exist`);
  });

  it('half an environment credential pair exits 2 naming the pair', async () => {
    const env = { HUBCRAWL_REGISTRY_HOST: '127.0.0.1:9', HUBCRAWL_REGISTRY_PASSWORD: 'x' };
    const r = await runCli(['crawl', '--image', DEAD_SEED, '--db', db], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('HUBCRAWL_REGISTRY_USERNAME and HUBCRAWL_REGISTRY_PASSWORD go together');
  });
});

describe('seeds a crawl refuses', () => {
  it.each([
    ['--catalog', 'ftp://127.0.0.1:9', 'is not an http(s) URL'],
    ['--catalog', '127.0.0.1:9/team', 'has a path or query (/team)'],
    ['--image', 'Not A Reference', 'seed image'],
  ])('%s %s exits 2 before a dataset is made', async (flag, seed, says) => {
    const fresh = join(dir, `refused-seed-${seed.replace(/\W+/g, '-')}.sqlite`);
    const r = await runCli(['crawl', flag, seed, '--db', fresh]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(says);
    expect(existsSync(fresh)).toBe(false);
  });
});

describe('export of a dataset that does not exist', () => {
  it('exits 2 and leaves no empty export folder behind', async () => {
    const out = join(dir, 'never', 'bundle');
    const r = await runCli(['export', '--db', join(dir, 'no-such.sqlite'), '--out', out]);
    expect(r.code).toBe(2);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});

describe('iocs check with globs that can never match', () => {
  it.each(['/usr/lib/', '/usr//lib/liblzma.so.5', '/usr/./lib/x', '/usr/lib/../x'])(
    'refuses %s, naming the file, the rule and the glob',
    async (glob) => {
      const file = join(dir, 'set.json');
      const rules = [
        { id: 'fine', kind: 'file-md5', md5: 'b'.repeat(32), paths: ['/usr/lib/x'] },
        { id: 'never', kind: 'file-md5', md5: 'c'.repeat(32), paths: ['/usr/lib/y', glob] },
      ];
      writeFileSync(file, JSON.stringify({ id: 's', version: '1', title: 't', references: [], rules }));
      const r = await runCli(['iocs', 'check', file]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}: rules[1].paths[1]: the path glob "${glob}"`);
      expect(r.stderr).toContain('could never match');
    },
  );
});

describe('--max-tags help', () => {
  it('says how tags without a push date are ordered', async () => {
    const r = await runCli(['crawl', '--help']);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(
      'newest push first; tags without a push date after those, highest name first, digit runs compared as numbers (v10 before v9, 1.10 before 1.9)',
    );
  });
});
