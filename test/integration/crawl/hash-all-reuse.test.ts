/**
 * `--hash-all-files` hashes every regular file so that later hash rules can be matched without
 * downloading again. A plain crawl of the same IOC sets after it must therefore reuse those layers: their
 * facts hold everything its own selection would record. The other way round is a new download: a plain
 * analysis hashed only the candidates. Likewise a crawl with fewer IOC sets after one with more (a set of
 * one's own added for one study) reuses the layers, and the reverse does not. Real registry, in-process
 * crawls, one dataset per direction.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
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

describe('layers analyzed with more IOC sets than the next crawl loads', () => {
  /** A set of one's own: a file rule on paths no other rule watches, and a byte signature. */
  const extraSet = () => {
    const file = join(ws.dir, 'extra.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'one-study',
        version: '1',
        title: 'a set added for one study',
        references: [],
        rules: [
          { id: 'srv-tool', kind: 'file-sha256', sha256: '0'.repeat(64), paths: ['/srv/**'] },
          { id: 'marker', kind: 'byte-signature', hex: 'de ad be ef 13 37', paths: ['/usr/lib/**/*.so*'] },
        ],
      }),
    );
    return file;
  };
  const crawlWith = (dbPath: string, more: string[]) =>
    runTestCrawl(
      dbPath,
      ws.iocFile,
      { seeds: { images: [`${registry.host}/${REPO}:1`] } },
      { moreIocFiles: more },
    );

  it('are reused by a crawl with fewer sets: their facts answer its rules, no download, no warning', async () => {
    const db = ws.dbPath('more-sets-first');
    expect((await crawlWith(db, [extraSet()])).stats).toMatchObject({ layersAnalyzed: 2 });
    const fewer = await crawlWith(db, []);
    expect(fewer.status).toBe('completed');
    expect(fewer.stats).toMatchObject({ layersAnalyzed: 0, layerBytes: 0, layersWithOtherSelection: 0 });
    expect(dropperFindings(db)).toHaveLength(1);
  });

  it('are reused in a dataset from before schema 5 too: the crawl gives back their selection from its run', async () => {
    const db = ws.dbPath('more-sets-before-schema-5');
    expect((await crawlWith(db, [extraSet()])).stats).toMatchObject({ layersAnalyzed: 2 });
    // An upgraded dataset: layers carry their selection's fingerprint, and no definition is recorded.
    const old = new BetterSqlite3(db);
    old.exec('DELETE FROM selections');
    old.close();
    const fewer = await crawlWith(db, []);
    expect(fewer.stats).toMatchObject({ layersAnalyzed: 0, layerBytes: 0, layersWithOtherSelection: 0 });
  });

  it('are analyzed again for a crawl with more sets: their facts never looked for its new rules', async () => {
    const db = ws.dbPath('fewer-sets-first');
    await crawlWith(db, []);
    expect((await crawlWith(db, [extraSet()])).stats).toMatchObject({ layersAnalyzed: 2 });
  });
});
