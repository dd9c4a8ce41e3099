/**
 * Runs the hubcrawl CLI from source in a child process (no build needed), so tests capture its
 * real stderr and exit code: `node --import tsx test/reliability/security/cli.ts crawl …`.
 */
import { main } from '../../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
