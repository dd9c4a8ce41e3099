/**
 * A custom IOC set edited in place, its version left as it was: the dataset stores the new rules over the
 * old ones (IocStore), so the next crawl must re-match every image with them, from the stored facts,
 * rather than keep findings that the stored rules no longer produce. The tests run in order on one dataset.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { DROPPER_CONTENT, DROPPER_PATH, DROPPER_SHA256, runTestCrawl } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'ioc-set-edit';
const work = mkdtempSync(join(tmpdir(), 'hubcrawl-ioc-edit-'));
const iocFile = join(work, 'iocs.json');
const dbPath = join(work, 'crawl.sqlite');

/** Version 1 of the set, with the rule's hash (and path glob) as given. */
const writeSet = (sha256: string, paths = [DROPPER_PATH]) =>
  writeFileSync(
    iocFile,
    JSON.stringify({
      id: 'edited-in-place',
      version: '1',
      title: 'a set whose rule is corrected without a new version',
      references: [],
      rules: [{ id: 'dropper', kind: 'file-sha256', sha256, paths }],
    }),
  );

const findings = () =>
  queryDataset<{ rule_id: string; value: string }>(
    dbPath,
    `SELECT rule_id, value FROM findings WHERE ioc_set_id = 'edited-in-place'`,
  );

beforeAll(async () => {
  const image = await buildImage({
    layers: [{ entries: [{ type: 'file', path: DROPPER_PATH, content: DROPPER_CONTENT }] }],
  });
  await pushImage(registry, REPO, 'latest', image);
  const other = await buildImage({
    layers: [{ entries: [{ type: 'file', path: '/srv/other.bin', content: 'another image\n' }] }],
  });
  await pushImage(registry, REPO, 'other', other);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a custom IOC set edited without a new version', () => {
  it('is matched with its new rules on the next crawl, without downloading the layer again', async () => {
    const settings = { seeds: { images: [`${registry.host}/${REPO}:latest`] } };
    writeSet('0'.repeat(64));
    expect((await runTestCrawl(dbPath, iocFile, settings)).status).toBe('completed');
    expect(findings()).toEqual([]);

    writeSet(DROPPER_SHA256);
    const second = await runTestCrawl(dbPath, iocFile, settings);
    expect(second.status).toBe('completed');
    expect(findings()).toEqual([{ rule_id: 'dropper', value: DROPPER_SHA256 }]);
    expect(second.stats).toMatchObject({ layersAnalyzed: 0 });
    const stored = queryDataset<{ json: string }>(
      dbPath,
      `SELECT json FROM ioc_rules WHERE ioc_set_id = 'edited-in-place' AND rule_id = 'dropper'`,
    );
    expect(JSON.parse(stored[0]!.json).sha256).toBe(DROPPER_SHA256);
  });

  it('warns, and counts in the run stats, layers a crawl left with the candidate files of the old rules', async () => {
    // The rule now watches another path: the first image's layer was hashed for the old one. This crawl
    // reaches only the other image, so that layer keeps its old facts and its image is re-matched from them.
    writeSet(DROPPER_SHA256, ['/srv/**']);
    const third = await runTestCrawl(dbPath, iocFile, {
      seeds: { images: [`${registry.host}/${REPO}:other`] },
    });
    expect(third.status).toBe('completed');
    expect(third.stats).toMatchObject({ layersAnalyzed: 1, layersWithOtherSelection: 1 });
  });
});
