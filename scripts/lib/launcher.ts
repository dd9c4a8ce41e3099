/**
 * How hubcrawl's launcher starts Node, read from bin/hubcrawl.js's exec line: its V8 flags and the
 * malloc settings it exports. The benchmarks, the demo and the end-to-end tests start the CLI and the
 * analyzer the same way a user's `npx hubcrawl` does, and a change to the launcher changes what they
 * measure.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LAUNCHER = fileURLToPath(new URL('../../bin/hubcrawl.js', import.meta.url));

const EXEC_LINE =
  /^\/\/bin\/sh -c :; hubcrawl_malloc=([^;\s]+); export GLIBC_TUNABLES="\$\{GLIBC_TUNABLES:\+\$hubcrawl_malloc:\}\$\{GLIBC_TUNABLES-\$hubcrawl_malloc\}"; exec node((?: --\S+)*) "\$0" "\$@"$/;

function execLine(): { tunables: string; nodeFlags: string[] } {
  const line = readFileSync(LAUNCHER, 'utf8').split('\n', 2)[1] ?? '';
  const m = EXEC_LINE.exec(line);
  if (!m) {
    throw new Error(
      `${LAUNCHER}: expected \`//bin/sh -c :; hubcrawl_malloc=…; export GLIBC_TUNABLES="\${GLIBC_TUNABLES:+$hubcrawl_malloc:}\${GLIBC_TUNABLES-$hubcrawl_malloc}"; exec node [--flag…] "$0" "$@"\` on line 2, found ${line}`,
    );
  }
  return { tunables: m[1] as string, nodeFlags: (m[2] ?? '').trim().split(/\s+/).filter(Boolean) };
}

/** The V8 flags of the launcher's `exec node --a --b "$0" "$@"`. */
export function launcherNodeFlags(): string[] {
  return execLine().nodeFlags;
}

/** The launcher's default GLIBC_TUNABLES (malloc settings; see bin/hubcrawl.js). */
export function launcherTunables(): string {
  return execLine().tunables;
}

/**
 * `env` as the launcher hands it to Node: GLIBC_TUNABLES is the launcher's, followed by `env`'s own when
 * it has one (glibc takes a tunable's last value, so those win), or empty when `env`'s is empty.
 */
export function launcherEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const own = env.GLIBC_TUNABLES;
  const tunables = own === undefined ? launcherTunables() : own === '' ? '' : `${launcherTunables()}:${own}`;
  return { ...env, GLIBC_TUNABLES: tunables };
}
