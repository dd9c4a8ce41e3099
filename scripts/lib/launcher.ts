/**
 * The Node/V8 flags hubcrawl's launcher runs with, read from the shebang of bin/hubcrawl.js, so the
 * benchmarks and the demo run the analyzer and the CLI under the same flags a user's `npx hubcrawl`
 * gets, and a change to the launcher changes what they measure.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LAUNCHER = fileURLToPath(new URL('../../bin/hubcrawl.js', import.meta.url));

/** `#!/usr/bin/env -S node --a --b` → `['--a', '--b']`; `#!/usr/bin/env node` → `[]`. */
export function launcherNodeFlags(): string[] {
  const shebang = readFileSync(LAUNCHER, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env\s+(?:-S\s+)?node((?:\s+--\S+)*)\s*$/.exec(shebang);
  if (!m)
    throw new Error(`${LAUNCHER}: expected a "#!/usr/bin/env [-S] node [--flag…]" shebang, found ${shebang}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}
