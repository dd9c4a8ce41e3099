import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * The path with every symlink resolved, also where it leads to no file yet: a file not there yet in its
 * real folder, a dangling symlink as its target (writing to it creates that target). `hops` bounds a loop.
 * Two names of one file (a symlink and its target, `./d.sqlite` and `/abs/d.sqlite`) give one answer.
 */
export function realPathOf(path: string, hops = 0): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    const link = hops < 40 ? lstatSync(absolute, { throwIfNoEntry: false }) : undefined;
    if (link?.isSymbolicLink())
      return realPathOf(resolve(dirname(absolute), readlinkSync(absolute)), hops + 1);
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(realPathOf(parent, hops), basename(absolute));
  }
}
