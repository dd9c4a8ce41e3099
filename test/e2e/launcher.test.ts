/**
 * bin/hubcrawl.js as `npx hubcrawl` runs it: executed through its shebang, which carries the V8 heap
 * flag the analyzer's speed depends on (docs/benchmarks.md, "launcher heap flag"). A shebang Node
 * rejects, a flag lost from it, or a launcher without its executable bit would slow or break every
 * installed hubcrawl while the rest of the suite, which starts the launcher with `node`, still passed.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { LAUNCHER, launcherNodeFlags } from '../../scripts/lib/launcher.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the launcher bin/hubcrawl.js', () => {
  it('is executable and runs the CLI through its own shebang', async () => {
    accessSync(LAUNCHER, constants.X_OK);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const { stdout } = await run(LAUNCHER, ['--version']);
    expect(stdout.trim()).toBe(pkg.version);
  });

  it('starts Node with the 64 MB initial heap that the benchmarks and the demo also use', async () => {
    expect(launcherNodeFlags()).toEqual(['--initial-heap-size=64']);
    // A preloaded script reports the flags of the Node the shebang started.
    const probe = join(dir, 'probe.cjs');
    writeFileSync(probe, 'process.stderr.write(`execArgv=${JSON.stringify(process.execArgv)}\\n`);\n');
    const { stderr } = await run(LAUNCHER, ['--version'], {
      env: { ...process.env, NODE_OPTIONS: `--require ${probe}` },
    });
    const execArgv = JSON.parse(/^execArgv=(.*)$/m.exec(stderr)?.[1] ?? 'null');
    expect(execArgv).toEqual(['--initial-heap-size=64']);
  });
});
