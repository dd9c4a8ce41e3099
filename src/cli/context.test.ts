import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinIocSets } from '../analyzer/iocs/builtin.js';
import { ANALYZER_VERSION } from '../analyzer/layer-stream.js';
import { loadConfig, redactConfig } from '../config/load.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { openDatabase } from '../db/open.js';
import { RunStore } from '../db/run-store.js';
import { openRun } from '../pipeline/run-start.js';
import { refuseUnfinishedRun } from './context.js';

let dir: string;
let db: Database;
const path = () => join(dir, 'd.db');
const sets = builtinIocSets();
const config = loadConfig({ env: {}, flagSettings: { seeds: { images: ['debian:sid-20240311'] } } });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-context-'));
  db = openDatabase(path());
});
afterEach(() => {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An interrupted run of `config`'s study, started by a hubcrawl whose analyzer was `analyzerVersion`. */
function unfinishedRun(analyzerVersion: string): number {
  const runs = new RunStore(db);
  const id = runs.start({
    config: redactConfig(config),
    toolVersion: '0.1.0',
    analyzerVersion,
    iocSets: sets.map((s) => ({ id: s.id, version: s.version })),
  });
  runs.finish(id, 'aborted');
  return id;
}

describe('an unfinished run an older hubcrawl started', () => {
  it('holds back no rematch or scan, since no command of this hubcrawl can resume it', () => {
    unfinishedRun(ANALYZER_VERSION);
    expect(() => refuseUnfinishedRun(db, path())).toThrow(ConfigError);
    db = openDatabase(path());
    unfinishedRun('older');
    expect(() => refuseUnfinishedRun(db, path())).not.toThrow();
  });

  it('is named as the reason a crawl of the same study starts a new run', () => {
    const older = unfinishedRun('older');
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
    const { runId, resumed } = openRun(db, { config, iocSets: sets, log });
    expect(resumed).toBe(false);
    expect(runId).not.toBe(older);
    expect(warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `started by a hubcrawl with analyzer version older, which this one \\(${ANALYZER_VERSION}\\) cannot resume`,
        ),
      ),
    ]);
  });
});

describe("a scan's run left unfinished", () => {
  it('is resumed by a crawl of the same study as the scan it is, whose command the run keeps', () => {
    const runs = new RunStore(db);
    const scan = runs.start({
      config: { command: 'scan', ...redactConfig(config) },
      toolVersion: '0.1.0',
      analyzerVersion: ANALYZER_VERSION,
      iocSets: sets.map((s) => ({ id: s.id, version: s.version })),
    });
    runs.finish(scan, 'aborted');
    const log = { warn: () => {} } as unknown as Logger;
    expect(openRun(db, { config, iocSets: sets, log, command: 'crawl' })).toEqual({
      runId: scan,
      resumed: true,
      command: 'scan',
    });
  });
});

describe('the refusal of an unfinished scan whose config file set tag filters', () => {
  it('says to give that file again, since no scan flag sets them', () => {
    const runs = new RunStore(db);
    const id = runs.start({
      config: { command: 'scan', seeds: { images: ['a/b:1'] }, filters: { tags: '^v', platforms: [] } },
      toolVersion: '0.1.0',
      analyzerVersion: ANALYZER_VERSION,
      iocSets: [],
    });
    runs.finish(id, 'aborted');
    expect(() => refuseUnfinishedRun(db, path())).toThrow(
      `finish it first: \`hubcrawl scan --db ${path()} a/b:1\` with the config file it was started with (--config), ` +
        'which set filters.tags that scan has no flags for, resumes it, or use another --db',
    );
  });
});

describe('a rematch run left unfinished', () => {
  /** What a `hubcrawl rematch` killed with SIGKILL leaves: its row `running`, config and sets of `config`'s study. */
  function killedRematch(): number {
    return new RunStore(db).start({
      config: { command: 'rematch', ...redactConfig(config) },
      toolVersion: '0.1.0',
      analyzerVersion: ANALYZER_VERSION,
      iocSets: sets.map((s) => ({ id: s.id, version: s.version })),
    });
  }

  it('holds back no rematch or scan: it has nothing to resume', () => {
    killedRematch();
    expect(() => refuseUnfinishedRun(db, path())).not.toThrow();
    expect(() => refuseUnfinishedRun(db, path(), { config, iocSets: sets })).not.toThrow();
  });

  it('still lets an unfinished crawl before it hold them back', () => {
    unfinishedRun(ANALYZER_VERSION);
    killedRematch();
    expect(() => refuseUnfinishedRun(db, path())).toThrow(
      new RegExp(
        `holds unfinished run 1, started [^;]+; finish it first: \`hubcrawl crawl --db ${path()} --image debian:sid-20240311\` resumes it`,
      ),
    );
  });

  it('is neither resumed nor superseded by a crawl of the same settings, which marks it aborted', () => {
    const rematch = killedRematch();
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
    const { runId, resumed } = openRun(db, { config, iocSets: sets, log });
    expect(resumed).toBe(false);
    expect(runId).not.toBe(rematch);
    expect(warnings).toEqual([]);
    const runs = new RunStore(db);
    expect(runs.get(rematch)).toMatchObject({ status: 'aborted', finishedAt: null });
    expect(runs.get(runId)).toMatchObject({ status: 'running' });
  });
});
