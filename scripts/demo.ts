/**
 * `npm run demo`: the main job on any machine, without internet. Starts the real distribution
 * registry on loopback, pushes the demo images, crawls the registry's catalog with the built CLI,
 * prints `hubcrawl stats` and the affected images, and writes the report to demo-out/report.csv. The
 * dataset stays in demo-out/ for queries.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { shellQuoted } from '../src/core/shell.js';
import { buildDemoImages } from './demo-images.js';
import { LAUNCHER, launcherEnv, launcherNodeFlags } from './lib/launcher.js';
import { pushImage } from './lib/push.js';
import { startRegistry } from './lib/registry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = `${root}demo-out`;
const db = `${outDir}/hubcrawl.sqlite`;

/** The command as a user pastes it into a shell in this folder (README: `npx hubcrawl`). */
function commandLine(args: string[]): string {
  return ['npx', 'hubcrawl', ...args].map(shellQuoted).join(' ');
}

function hubcrawl(args: string[]): number {
  process.stdout.write(`\n$ ${commandLine(args)}\n`);
  // As `npx hubcrawl` runs it: this Node, the launcher's V8 flags and malloc settings.
  const r = spawnSync(process.execPath, [...launcherNodeFlags(), LAUNCHER, ...args], {
    stdio: 'inherit',
    env: launcherEnv(),
  });
  return r.status ?? 3;
}

async function main(): Promise<number> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const registry = await startRegistry({ auth: 'none', installIfMissing: process.getuid?.() === 0 });
  try {
    process.stdout.write(`registry: ${registry.url} (docker-registry on loopback)\n`);
    for (const d of await buildDemoImages()) {
      await pushImage(registry, d.repository, d.tag, d.image);
      process.stdout.write(`pushed ${registry.host}/${d.repository}:${d.tag} — expect ${d.expect}\n`);
    }
    const crawl = hubcrawl(['crawl', '--catalog', registry.url, '--db', db, '--log-level', 'warn']);
    if (crawl > 1) return crawl;
    hubcrawl(['stats', '--db', db]);
    hubcrawl([
      'query',
      '--db',
      db,
      'SELECT repository, tags, platform, rule_id, evidence_kinds, in_final_fs FROM affected_images ORDER BY repository, platform, rule_id',
    ]);
    hubcrawl(['report', '--db', db, '--out', `${outDir}/report.csv`]);
    process.stdout.write(
      `\nreport: ${outDir}/report.csv\ndataset: ${db} (try: ${commandLine(['query', '--db', db, 'SELECT * FROM report_rows'])})\n`,
    );
    return crawl;
  } finally {
    await registry.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 3;
  },
);
