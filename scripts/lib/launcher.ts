/**
 * The Node/V8 flags hubcrawl's launcher runs with, read from bin/hubcrawl.js's exec line, so the
 * benchmarks and the demo run the analyzer and the CLI under the same flags a user's `npx hubcrawl`
 * gets, and a change to the launcher changes what they measure.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LAUNCHER = fileURLToPath(new URL('../../bin/hubcrawl.js', import.meta.url));

/** The flags of the launcher's `exec node --a --b "$0" "$@"` line (its second; see the launcher). */
export function launcherNodeFlags(): string[] {
  const execLine = readFileSync(LAUNCHER, 'utf8').split('\n', 2)[1] ?? '';
  const m = /^\/\/bin\/sh -c :; exec node((?: --\S+)*) "\$0" "\$@"$/.exec(execLine);
  if (!m)
    throw new Error(
      `${LAUNCHER}: expected \`//bin/sh -c :; exec node [--flag…] "$0" "$@"\` on line 2, found ${execLine}`,
    );
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}
