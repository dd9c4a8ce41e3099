/**
 * bin/hubcrawl.js as `npx hubcrawl` runs it: executed as a program, whose /bin/sh line starts Node with
 * the V8 flags and malloc settings the analyzer's speed depends on (docs/benchmarks.md, "launcher heap
 * flag" and "fresh memory"). A line a shell cannot run, a flag lost from it, or a launcher without its
 * executable bit would slow or break
 * every installed hubcrawl while the rest of the suite, which starts the launcher with `node`, passed.
 */
import { execFile } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { LAUNCHER, launcherEnv, launcherNodeFlags, launcherTunables } from '../../scripts/lib/launcher.js';
import { findOnPath } from '../../src/core/find-on-path.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the launcher bin/hubcrawl.js', () => {
  it('is executable and runs the CLI as a program', async () => {
    accessSync(LAUNCHER, constants.X_OK);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const { stdout } = await run(LAUNCHER, ['--version']);
    expect(stdout.trim()).toBe(pkg.version);
  });

  it('runs through a symlink, as npm links it into node_modules/.bin', async () => {
    const link = join(dir, 'hubcrawl');
    symlinkSync(LAUNCHER, link);
    const { stdout } = await run(link, ['--version']);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  // Alpine's /bin/sh, where `#!/usr/bin/env -S node --flag` would not start at all. Installed by .ci/run.
  it.skipIf(findOnPath('busybox', process.env.PATH ?? '') === null)(
    "runs under BusyBox's sh (Alpine's /bin/sh), with no error output",
    async () => {
      const { stdout, stderr } = await run('busybox', ['sh', LAUNCHER, '--version']);
      expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
      expect(stderr).toBe('');
    },
  );

  /** What the Node that the launcher's exec line started saw: its V8 flags and its GLIBC_TUNABLES. */
  async function probeLauncher(
    env: NodeJS.ProcessEnv,
  ): Promise<{ execArgv: string[]; tunables: string | null }> {
    const probe = join(dir, 'probe.cjs');
    writeFileSync(
      probe,
      'process.stderr.write("probe=" + JSON.stringify({ execArgv: process.execArgv, tunables: process.env.GLIBC_TUNABLES ?? null }) + "\\n");\n',
    );
    const { stderr } = await run(LAUNCHER, ['--version'], {
      env: { ...env, NODE_OPTIONS: `--require ${probe}` },
    });
    return JSON.parse(/^probe=(.*)$/m.exec(stderr)?.[1] ?? 'null');
  }

  it('starts Node with the V8 flags and malloc settings that the benchmarks and the demo also use', async () => {
    expect(launcherNodeFlags()).toEqual(['--initial-heap-size=64', '--max-semi-space-size=2']);
    expect(launcherTunables()).toBe(
      'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216',
    );
    const { GLIBC_TUNABLES: _, ...withoutTunables } = process.env;
    expect(await probeLauncher(withoutTunables)).toEqual({
      execArgv: launcherNodeFlags(),
      tunables: launcherTunables(),
    });
    expect(launcherEnv(withoutTunables).GLIBC_TUNABLES).toBe(launcherTunables());
  });

  it("puts a GLIBC_TUNABLES of the user's own after its malloc settings, and drops them for an empty one", async () => {
    const own = 'glibc.malloc.arena_max=2';
    const merged = `${launcherTunables()}:${own}`;
    expect((await probeLauncher({ ...process.env, GLIBC_TUNABLES: own })).tunables).toBe(merged);
    expect(launcherEnv({ GLIBC_TUNABLES: own }).GLIBC_TUNABLES).toBe(merged);
    expect((await probeLauncher({ ...process.env, GLIBC_TUNABLES: '' })).tunables).toBe('');
    expect(launcherEnv({ GLIBC_TUNABLES: '' }).GLIBC_TUNABLES).toBe('');
  });

  // glibc's own loader is the oracle for "yours win where they overlap": it prints the tunables it ended up with.
  const loader = ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1'].find((p) => existsSync(p));
  it.skipIf(loader === undefined)(
    "lets the user's value of a tunable win over the launcher's, and keeps the launcher's others",
    async () => {
      const { tunables } = await probeLauncher({
        ...process.env,
        GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1048576',
      });
      const { stdout } = await run(loader as string, ['--list-tunables'], {
        env: { ...process.env, GLIBC_TUNABLES: tunables ?? '' },
      });
      expect(/^glibc\.malloc\.trim_threshold: (\S+)/m.exec(stdout)?.[1]).toBe('0x100000');
      expect(/^glibc\.malloc\.mmap_threshold: (\S+)/m.exec(stdout)?.[1]).toBe('0x400000');
    },
  );
});
