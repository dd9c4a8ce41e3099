/**
 * `--hash-all-files` hashes every regular file so that later hash rules can be matched without
 * downloading again. A plain crawl of the same IOC sets after it must therefore reuse those layers: their
 * facts hold everything its own selection would record. The other way round is a new download: a plain
 * analysis hashed only the candidates. Real registry, in-process crawls, one dataset per direction.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import {
  buildCrawlScenario,
  DROPPER_SHA256,
  makeWorkspace,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'hash-all-reuse/app';
let ws: Workspace;

beforeAll(async () => {
  const s = await buildCrawlScenario();
  await pushImage(registry, REPO, '1', await buildImage({ layers: [s.base, s.layers.dropper] }));
  ws = makeWorkspace('hubcrawl-hash-all-');
});

afterAll(() => ws?.cleanup());

const crawl = (dbPath: string, hashAllFiles: boolean) =>
  runTestCrawl(dbPath, ws.iocFile, { seeds: { images: [`${registry.host}/${REPO}:1`] }, hashAllFiles });

const dropperFindings = (dbPath: string) =>
  queryDataset<{ value: string }>(dbPath, `SELECT value FROM findings WHERE value = ?`, DROPPER_SHA256);

/** Files recorded with hashes that no rule's glob names: present only when every file was hashed. */
const hashedHostConf = (dbPath: string) =>
  queryDataset(dbPath, `SELECT path FROM layer_files WHERE path = '/etc/host.conf' AND sha256 IS NOT NULL`);

describe('layers analyzed with --hash-all-files', () => {
  it('are reused by a plain crawl of the same sets: no download, no warning, the same findings', async () => {
    const db = ws.dbPath('hash-all-first');
    const first = await crawl(db, true);
    expect(first.status).toBe('completed');
    expect(first.stats).toMatchObject({ layersAnalyzed: 2 });
    expect(hashedHostConf(db)).toHaveLength(1);
    expect(dropperFindings(db)).toHaveLength(1);

    const second = await crawl(db, false);
    expect(second.status).toBe('completed');
    // The known manifest's layers need nothing, so no layer item is even created.
    expect(second.stats).toMatchObject({ layersAnalyzed: 0, layerBytes: 0, layersWithOtherSelection: 0 });
    expect(hashedHostConf(db)).toHaveLength(1); // the hash-all facts are still there
    expect(dropperFindings(db)).toHaveLength(1);
  });

  it('are analyzed again when the plain crawl came first: it hashed only the candidates', async () => {
    const db = ws.dbPath('plain-first');
    await crawl(db, false);
    expect(hashedHostConf(db)).toHaveLength(0);
    const hashAll = await crawl(db, true);
    expect(hashAll.stats).toMatchObject({ layersAnalyzed: 2 });
    expect(hashedHostConf(db)).toHaveLength(1);
  });
});
