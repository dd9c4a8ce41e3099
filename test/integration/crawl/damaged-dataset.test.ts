/**
 * A dataset row damaged by hand (an os-release row whose fields are no JSON object): a crawl that must
 * read that layer's facts (to match an image on it, or give it an OS verdict) stops, resumably, naming the
 * row, instead of failing for good the item that happened to read it, and marking a layer item's own,
 * sound layer failed with another layer's error. The same for a frontier item whose stored payload was
 * damaged: the run stops before the item is claimed.
 */
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltBlob, buildImage, buildLayer } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
const REPO = 'damaged-dataset';
let ws: Workspace;
let dbPath: string;
let base: BuiltBlob;

beforeAll(async () => {
  ws = makeWorkspace('hubcrawl-damaged-');
  dbPath = ws.dbPath('damaged');
  base = await buildLayer([
    { type: 'file', path: '/etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
  ]);
  for (const tag of ['first', 'second']) {
    const upper = [{ type: 'file' as const, path: `/srv/${tag}.txt`, content: `${tag}\n` }];
    await pushImage(registry, REPO, tag, await buildImage({ layers: [base, { entries: upper }] }));
  }
});
afterAll(() => ws?.cleanup());

describe('a crawl over a damaged dataset row', () => {
  it('stops naming the row, and leaves the item that met it to the resumed run, no layer marked failed', async () => {
    const seed = (tag: string) => ({ seeds: { images: [`${registry.host}/${REPO}:${tag}`] } });
    expect((await runTestCrawl(dbPath, ws.iocFile, seed('first'))).status).toBe('completed');

    const db = new BetterSqlite3(dbPath);
    const damaged = db
      .prepare('UPDATE layer_os_release SET fields_json = ? WHERE layer_digest = ?')
      .run('{"ID": "deb', base.digest).changes;
    db.close();
    expect(damaged).toBe(1);

    // The second image shares the damaged base: its manifest item reads the base's facts for an OS verdict.
    const crawl = runTestCrawl(dbPath, ws.iocFile, seed('second'), { fresh: true });
    const named = new RegExp(
      `^the dataset's layer_os_release row of layer ${base.digest} \\(/etc/os-release\\) holds no JSON object`,
    );
    // As a full disk does (FatalError): the run is marked aborted, resumable, and the error goes up.
    await expect(crawl).rejects.toThrow(named);
    const [run] = queryDataset<{ status: string; stats_json: string }>(
      dbPath,
      'SELECT status, stats_json FROM crawl_runs ORDER BY id DESC LIMIT 1',
    );
    expect(run?.status).toBe('aborted');
    expect(JSON.parse(run!.stats_json).error).toMatch(named);
    // The item that met the row goes back to pending for the resumed run; no layer carries its error.
    expect(
      queryDataset<{ kind: string; state: string }>(
        dbPath,
        `SELECT kind, state FROM frontier WHERE state != 'done'`,
      ),
    ).toEqual([{ kind: 'manifest', state: 'pending' }]);
    expect(
      queryDataset(dbPath, `SELECT digest FROM layers WHERE status = 'failed' OR error_code IS NOT NULL`),
    ).toEqual([]);
  });

  it('stops the resumed run naming a frontier row whose payload was damaged, the item still pending', async () => {
    const db = new BetterSqlite3(dbPath);
    // The row of the first test mended; the payload of the item left pending damaged instead.
    db.prepare('UPDATE layer_os_release SET fields_json = ? WHERE layer_digest = ?').run(
      JSON.stringify({ ID: 'debian', VERSION_ID: '12' }),
      base.digest,
    );
    const item = db.prepare(`SELECT id, kind, key FROM frontier WHERE state = 'pending'`).get() as {
      id: number;
      kind: string;
      key: string;
    };
    db.prepare('UPDATE frontier SET payload_json = ? WHERE id = ?').run('{"registry": ', item.id);
    db.close();

    const crawl = runTestCrawl(dbPath, ws.iocFile, {
      seeds: { images: [`${registry.host}/${REPO}:second`] },
    });
    const named = `the dataset's frontier row ${item.id} (${item.kind} ${item.key}) holds no valid JSON in payload_json`;
    await expect(crawl).rejects.toThrow(named);
    const [run] = queryDataset<{ status: string }>(
      dbPath,
      'SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1',
    );
    expect(run?.status).toBe('aborted');
    // Claimed and rolled back: the item is as it was, for a crawl after the row is restored.
    expect(
      queryDataset(dbPath, `SELECT id, state, attempts, payload_json FROM frontier WHERE state != 'done'`),
    ).toEqual([{ id: item.id, state: 'pending', attempts: 0, payload_json: '{"registry": ' }]);
  });
});
