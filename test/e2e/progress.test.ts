/**
 * The progress display: a status line redrawn in place on a terminal (a real pty from util-linux
 * `script`), plain JSON log lines when stderr is not a terminal (cron, CI, a pipe).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, buildCliOnce, cleanEnv, removeTempDirs, runCli, settle, tempDir } from './helpers/cli.js';
import { type DemoRegistry, startDemoRegistry } from './helpers/demo.js';

let demo: DemoRegistry;
let dir: string;

beforeAll(async () => {
  dir = tempDir('progress');
  await settle(
    startDemoRegistry().then((d) => {
      demo = d;
    }),
    buildCliOnce(),
  );
}, 180_000);

afterAll(async () => {
  await demo?.registry.stop();
  removeTempDirs();
});

/** Runs a shell command line on a fresh pty; returns what the terminal received (stdout and stderr). */
function onTerminal(commandLine: string): Promise<{ code: number | null; screen: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', commandLine, '/dev/null'], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      screen += d;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(killer);
      resolve({ code, screen });
    });
  });
}

const crawlLine = (db: string) =>
  `${process.execPath} ${BIN} crawl --catalog ${demo.registry.url} --db ${db} --log-level warn`;

describe('progress on a terminal', () => {
  it('is a status line redrawn in place, ending with the final counts, on a pty that reports no size', async () => {
    const { code, screen } = await onTerminal(crawlLine(join(dir, 'tty.sqlite')));
    expect(code).toBe(0);
    const draws = screen.split('\r\x1b[K').slice(1);
    expect(draws.length).toBeGreaterThan(0);
    // The last draw is the finished crawl, whole (a 0-column pty means "unknown width", not "cut").
    expect(draws.at(-1)).toMatch(
      /^repos 7 · tags 7 · images \d+ · layers 7 \(\+0 known\) · .* · queued 0\r\nrun 1 completed/,
    );
  });

  it('is cut to the terminal width', async () => {
    const { code, screen } = await onTerminal(`stty cols 60; ${crawlLine(join(dir, 'narrow.sqlite'))}`);
    expect(code).toBe(0);
    const draws = screen
      .split('\r\x1b[K')
      .slice(1)
      .map((d) => d.split('\r\n')[0]!);
    expect(draws.length).toBeGreaterThan(0);
    for (const d of draws) expect(d.length).toBeLessThan(60);
    expect(draws.at(-1)).toMatch(/^repos 7 · tags 7 · /);
  });
});

describe('progress off a terminal', () => {
  it('is plain JSON log lines on stderr, without terminal control characters', async () => {
    const r = await runCli(['crawl', '--catalog', demo.registry.url, '--db', join(dir, 'pipe.sqlite')]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).not.toContain('\r');
    const logs = r.stderr
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string });
    expect(logs.some((l) => /^repos 7 · tags 7 · images \d+ · layers 7 /.test(l.msg))).toBe(true);
    // stdout carries only the result.
    expect(r.stdout).toMatch(/^run 1 completed: [^\n]*\n$/);
  });
});
