import { lstatSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';

/** As many links as the kernel follows in one path before it gives up with ELOOP. */
const MAX_LINKS = 40;

/**
 * The path as the kernel resolves it, also where it leads to no file yet: each component in turn, a
 * symlink replaced by its target (a relative one from the link's real folder), `..` taken from the real
 * folder reached so far (after `sub -> elsewhere/d`, `sub/../x` is `elsewhere/x`, not `./x`), and what
 * does not exist kept as written (a dangling link leads to the file writing through it would create).
 * Two names of one file (a symlink and its target, `./d.sqlite` and `/abs/d.sqlite`) give one answer.
 * A component that is no folder (a path under a regular file) ends the lookups, as nothing is there.
 */
export function realPathOf(path: string): string {
  // Not path.resolve: it would take `..` before the symlinks ahead of it. The working directory is real.
  const pending = (path.startsWith('/') ? path : `${process.cwd()}/${path}`).split('/').reverse();
  let current = '/';
  let followed = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      current = dirname(current);
      continue;
    }
    const next = current === '/' ? `/${part}` : `${current}/${part}`;
    const target = followed < MAX_LINKS ? linkTarget(next) : undefined;
    if (target === undefined) {
      current = next;
      continue;
    }
    followed++;
    if (target.startsWith('/')) current = '/';
    for (const p of target.split('/').reverse()) pending.push(p);
  }
  return current;
}

/** The target of the symlink at `path`; undefined for anything else, missing or unreadable. */
function linkTarget(path: string): string | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(path) : undefined;
  } catch {
    return undefined; // ENOTDIR (a path under a file), EACCES: no link can be read there
  }
}
