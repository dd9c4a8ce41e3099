/**
 * `--debian-only` as a researcher sees it: the upper layers of an image whose base is not Debian are
 * skipped, `stats` counts them, `report` says the image has no rows, and `scan` says it was skipped as
 * not Debian.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alpineEntries } from '../../scripts/lib/debian-fixtures.js';
import { buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { buildCliOnce, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';

let registry: RunningRegistry;
let dir: string;
let ref: string;

beforeAll(async () => {
  dir = tempDir('debian-only');
  const setup = async () => {
    registry = await startRegistry({ auth: 'none', installIfMissing: true });
    // An Alpine base and two upper layers: --debian-only analyzes the base only.
    const alpine = await buildImage({
      layers: [
        { entries: alpineEntries() },
        { entries: [{ type: 'file', path: 'opt/app/a', content: 'a\n' }] },
        { entries: [{ type: 'file', path: 'opt/app/b', content: 'b\n' }] },
      ],
    });
    await pushImage(registry, 'e2e/alpine', '1', alpine);
    ref = `${registry.host}/e2e/alpine:1`;
  };
  await settle(setup(), buildCliOnce());
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  removeTempDirs();
});

describe('--debian-only', () => {
  it('stats counts the upper layers skipped as not Debian, in its table as in --json', async () => {
    const db = join(dir, 'crawl.sqlite');
    const crawl = await runCli(['crawl', '--image', ref, '--debian-only', '--db', db, '--quiet']);
    expect(crawl.code).toBe(0);
    const json = JSON.parse((await runCli(['stats', '--db', db, '--json'])).stdout);
    expect(json.lastRun.stats.layersSkippedNotDebian).toBe(2);
    const table = await runCli(['stats', '--db', db]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^layers skipped as not Debian \(--debian-only\) +2$/m);
    // The image is never matched, so the report has no row of it, and says so beside the CSV.
    const report = await runCli(['report', '--db', db]);
    expect(report.code).toBe(0);
    expect(report.stdout.trim().split('\n')).toHaveLength(1);
    expect(report.stderr).toBe(
      'hubcrawl: 1 image was skipped as not Debian-derived (--debian-only): only its base layer was analyzed ' +
        'and it is not matched, so it has no rows, even for evidence in that base layer; a crawl without ' +
        '--debian-only analyzes and matches it.\n',
    );
  });

  it('scan says an image was skipped as not Debian, not that it is incomplete', async () => {
    const db = join(dir, 'scan.sqlite');
    const r = await runCli(['scan', ref, '--debian-only', '--db', db, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ alpine +no +not Debian, skipped *\n\(1 row\)\n$/);
    expect(r.stdout).not.toContain('incomplete');
  });
});
