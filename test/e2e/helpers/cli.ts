/**
 * Runs the BUILT command line as a user would: `node <launcher flags> bin/hubcrawl.js …` in a child process, with a
 * clean environment (no HUBCRAWL_* from the developer's shell, a temp HOME so no ~/.docker/config.json).
 * The child is spawned asynchronously, so fakes served from the test process keep answering.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { launcherEnv, launcherNodeFlags } from '../../../scripts/lib/launcher.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'hubcrawl.js');
/** The launcher's V8 flags (and env), so the suite runs the CLI as `npx hubcrawl` does (test/e2e/launcher.test.ts). */
const NODE_FLAGS = launcherNodeFlags();

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Upper bound so a hung child never hangs the suite; not a performance threshold. */
  killAfterMs?: number;
  /** Run as this user and group (root only): file modes bind an unprivileged user, never root. */
  uid?: number;
  gid?: number;
  /**
   * Where the child's stdout goes: a pipe read whole (the default), a pipe whose reader has gone before
   * the child writes (`closed`, as `| head` leaves it), or an open file descriptor.
   */
  stdout?: 'pipe' | 'closed' | number;
  /**
   * `ulimit -f`: no file the child writes may grow past this many 512-byte blocks (EFBIG), as on a disk
   * that fills up while the command writes.
   */
  fileSizeLimitBlocks?: number;
}

// Temp folders of this test file; its afterAll removes them with removeTempDirs().
const created: string[] = [];

/** Removes every folder tempDir() made (and the temp HOME); call it in the file's afterAll. */
export function removeTempDirs(): void {
  for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true });
  home = undefined;
}

let home: string | undefined;

/** The environment a user's shell would give, minus anything hubcrawl reads. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  home ??= tempDir('home');
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    TMPDIR: tmpdir(),
    LANG: 'C.UTF-8',
    ...extra,
  };
}

/** Starts the CLI; `done` settles when it exits (with its whole stdout and stderr). */
export function startCli(
  args: string[],
  opts: CliOptions = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const command = [process.execPath, ...NODE_FLAGS, BIN, ...args];
  const limited =
    opts.fileSizeLimitBlocks === undefined
      ? command
      : ['/bin/sh', '-c', `ulimit -f ${opts.fileSizeLimitBlocks} && exec "$0" "$@"`, ...command];
  const child = spawn(limited[0] as string, limited.slice(1), {
    cwd: opts.cwd ?? ROOT,
    env: launcherEnv(cleanEnv(opts.env)),
    stdio: ['ignore', typeof opts.stdout === 'number' ? opts.stdout : 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  if (opts.stdout === 'closed') child.stdout?.destroy();
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 90_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/**
 * Who a test should run the CLI as to be bound by file modes: root ignores them, so as root this is the
 * `nobody` user (65534), after checking that it can read the built CLI (a checkout under a private home
 * folder would not let it); else the current user. Undefined where no such user can run it.
 */
export function unprivilegedUser(): { uid?: number; gid?: number } | undefined {
  if (process.getuid?.() !== 0) return {};
  const nobody = { uid: 65534, gid: 65534 };
  const probe = spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(BIN)})`], {
    ...nobody,
    cwd: tmpdir(),
    stdio: 'ignore',
  });
  return probe.status === 0 ? nobody : undefined;
}

/** Runs the CLI to completion. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}

const execFileP = promisify(execFile);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `npm run build` once per vitest run, however many e2e files call it: test files run in forks of
 * one vitest process, so its pid (our ppid) names the run. A mkdir lock makes the others wait.
 */
export async function buildCliOnce(): Promise<void> {
  // Outside dist/ (which `npm pack` ships), one pair per checkout.
  const checkout = createHash('sha256').update(ROOT).digest('hex').slice(0, 12);
  const stamp = join(tmpdir(), `hubcrawl-e2e-built-${checkout}`);
  const lock = join(tmpdir(), `hubcrawl-e2e-build-${checkout}.lock`);
  const key = String(process.ppid);
  const built = () => {
    try {
      return readFileSync(stamp, 'utf8') === key;
    } catch {
      return false;
    }
  };
  // Bounded wait: 900 × 200 ms = 3 min, far more than a build takes on a loaded machine.
  for (let i = 0; i < 900; i++) {
    if (built()) return;
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
    } catch {
      // Held by another file's build, or left by a killed run: take it over when its pid is gone.
      // (No pid file yet means its holder is between mkdir and write: wait.)
      let holder: number | undefined;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        holder = undefined;
      }
      if (holder !== undefined && !isAlive(holder)) rmSync(lock, { recursive: true, force: true });
      await sleep(200);
      continue;
    }
    try {
      if (!built()) {
        try {
          await execFileP('npm', ['run', 'build'], { cwd: ROOT });
        } catch (err) {
          // tsc prints its errors on stdout; say them, not just "Command failed".
          const e = err as { stdout?: string; stderr?: string };
          throw new Error(`npm run build failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
        }
        writeFileSync(stamp, key);
      }
      return;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  throw new Error('timed out waiting for another test file to build the CLI');
}

/** A fresh temp folder for one suite's datasets and files. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hubcrawl-e2e-${prefix}-`));
  created.push(dir);
  return dir;
}

/**
 * Waits for all setup work even when one part fails (then throws the first failure), so a failed
 * build never leaves a registry started beside it unassigned and running past afterAll.
 */
export async function settle(...work: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(work);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
