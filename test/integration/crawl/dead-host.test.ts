/**
 * A crawl of a host that is down from the start (nothing listens on its port): after a few requests the
 * HTTP client stops asking it, and the items still waiting on it fail with that. Their recorded error is
 * what a user reads (frontier.last_error, scan's Failed table), so it must name why the host did not
 * answer, not only that it was skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/lib/registry.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

let ws: Workspace;
/** host:port of loopback that nothing listens on. */
let dead: string;

beforeAll(async () => {
  ws = makeWorkspace('hubcrawl-dead-host-');
  dead = `127.0.0.1:${await freePort()}`;
});

afterAll(() => {
  ws?.cleanup();
});

describe('a crawl of a host nothing listens on', () => {
  it('records the refused connection as the cause in the error of the items it stopped asking for', async () => {
    const dbPath = ws.dbPath('dead-catalog');
    const outcome = await runTestCrawl(dbPath, ws.iocFile, {
      seeds: { catalogs: [`http://${dead}`] },
      http: { maxRetries: 0 },
    });
    expect(outcome.status).toBe('completed-with-failures');
    const items = queryDataset<{ state: string; code: string; error: string }>(
      dbPath,
      'SELECT state, last_error_code AS code, last_error AS error FROM frontier',
    );
    expect(items).toEqual([
      {
        state: 'failed',
        code: 'RETRYABLE',
        error: expect.stringMatching(
          new RegExp(
            `^${dead.replaceAll('.', '\\.')} answered none of the \\d+ requests before this one in this run, the last: connection failed \\(ECONNREFUSED\\); GET http://${dead.replaceAll('.', '\\.')}/v2/_catalog not sent`,
          ),
        ),
      },
    ]);
  });
});
