/** Finding an executable on a PATH, as a shell would, without running anything. */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Absolute path of executable `name` in the first directory of `path` (a PATH value) that has it, or null. */
export function findOnPath(name: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    // Empty and relative entries mean the current directory (or one below it) to a shell; a crawler
    // never runs what happens to be in whatever directory it was started from.
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}
