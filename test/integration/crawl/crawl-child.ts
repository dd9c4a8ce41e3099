/**
 * A crawl in its own process, for the kill -9 test: `node --import tsx crawl-child.ts <db> <iocFile>
 * <settings JSON>`. Prints the outcome as one JSON line on stdout when it finishes (if not killed first).
 */
import { runTestCrawl } from '../../helpers/crawl-fixtures.js';

const [dbPath, iocFile, settingsJson] = process.argv.slice(2);
if (!dbPath || !iocFile || !settingsJson) {
  process.stderr.write('usage: crawl-child.ts <db> <iocFile> <settings JSON>\n');
  process.exit(2);
}
const out = await runTestCrawl(dbPath, iocFile, JSON.parse(settingsJson) as Record<string, unknown>);
process.stdout.write(`${JSON.stringify({ runId: out.runId, resumed: out.resumed, status: out.status })}\n`);
