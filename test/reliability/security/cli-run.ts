/**
 * Spawns the CLI from source (cli.ts) without blocking this process's event loop, which serves the
 * fault proxies the child talks to, and collects everything a secret could leak into: stdout,
 * stderr, every row of every table of the dataset, its raw bytes (with the WAL), and exported files.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `hubcrawl <args>` with exactly `env` (plus PATH and HOME) and a bounded wall time. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: env.HOME ?? '/nonexistent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 3), stdout, stderr });
    });
  });
}

/** Every row of every table as JSON text, plus the raw bytes of the file and its WAL (latin1). */
export function datasetText(path: string): string {
  const db = new BetterSqlite3(path, { readonly: true });
  const parts: string[] = [];
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[];
    for (const { name } of tables) {
      parts.push(`== ${name}`, JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all()));
    }
  } finally {
    db.close();
  }
  for (const f of [path, `${path}-wal`]) if (existsSync(f)) parts.push(readFileSync(f).toString('latin1'));
  return parts.join('\n');
}

/** The content of every file below `dir` (latin1, so binary files are searched byte for byte). */
export function folderText(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(`== ${p}`, readFileSync(p).toString('latin1'));
    }
  };
  walk(dir);
  return out.join('\n');
}

/** The secrets found in `haystack`, by label (empty when none leaked). */
export function leaks(haystack: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, s]) => s.length > 0 && haystack.includes(s))
    .map(([label]) => label);
}
