/**
 * The folder an export writes its bundle to: `--out` checked and the folders above it made one by one, the
 * bundle built in a partial folder beside it (or inside an empty one), renamed into place when complete,
 * and taken away when the export fails or is stopped (commands/export.ts).
 */
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';

/** The errno code of a failed fs call, else its message. */
function reasonOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** Where an export builds its bundle, and how to put it in place or take it away. */
export interface ExportTarget {
  /** The --out folder as given. */
  out: string;
  /** Its mode when it existed (an empty folder), else undefined: it does not exist until the bundle is done. */
  existing: number | undefined;
  /** The folders above --out this export made, outermost first: removed again when it fails. */
  madeAbove: string[];
  /** The folder the bundle is written to. */
  work: string;
  /** `work` is inside --out (see makeWorkFolder): its entries are moved into --out one by one. */
  inside: boolean;
}

/**
 * Checks the export folder and creates any missing folders above it, one at a time; --out itself is not
 * created (the bundle is built in another folder and renamed to it when complete). Not `mkdirSync(dir,
 * { recursive: true })`: where a file system answers ENOENT for a folder whose parent exists (`/proc`
 * does), Node's recursive mkdir creates the parent, gets EEXIST, and retries the child for ever at 100%
 * CPU. So the nearest existing folder above must be a writable directory, and each mkdir that fails
 * is an error naming the folder. An --out that exists must be an empty folder.
 */
export function prepareExportFolder(out: string): ExportTarget {
  const missing: string[] = [];
  let dir = resolve(out);
  let existing: number | undefined;
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(dir);
    } catch (err) {
      // ENOTDIR: a file above is in the way; the walk up finds it and says so.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR')
        folderError(out, reasonOf(err), `cannot look at ${dir}`, err);
    }
    if (st !== undefined) {
      if (!st.isDirectory()) {
        if (missing.length === 0) folderError(out, 'EEXIST', 'a file of that name is in the way');
        folderError(out, 'ENOTDIR', `${dir} is not a folder`);
      }
      if (missing.length === 0) existing = Number(st.mode) & 0o7777;
      break;
    }
    missing.unshift(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const entries = existing === undefined ? [] : readdirSync(out);
  if (entries.length > 0 && entries.every((e) => e.startsWith('.partial-export-'))) {
    throw new ConfigError(
      `export folder ${out} holds only ${entries.join(', ')}, the unfinished bundle of an export that was killed; delete it and run again`,
    );
  }
  if (entries.length > 0) {
    throw new ConfigError(
      `export folder ${out} is not empty; choose a new folder so no file is mixed with an older export`,
    );
  }
  // The folders above --out; --out itself is the bundle, renamed into place.
  missing.pop();
  const madeAbove: string[] = [];
  if (missing.length > 0) {
    try {
      accessSync(dir, constants.W_OK);
    } catch (err) {
      folderError(out, reasonOf(err), `the folder ${dir} is not writable`, err);
    }
  }
  try {
    for (const d of missing) {
      try {
        mkdirSync(d);
      } catch (err) {
        folderError(out, reasonOf(err), `${dirname(d)} does not let a folder be made in it`, err);
      }
      madeAbove.push(d);
    }
  } catch (err) {
    removeMadeAbove(madeAbove);
    throw err;
  }
  return { out, existing, madeAbove, work: '', inside: false };
}

function folderError(out: string, code: string, detail: string, cause?: unknown): never {
  throw new ConfigError(
    `cannot create the export folder ${out} (${code}): ${detail}; give a new folder's path`,
    {
      cause,
    },
  );
}

function removeMadeAbove(made: string[]): void {
  for (const d of [...made].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      // Something else was put in it meanwhile: not ours to remove.
    }
  }
}

/**
 * Makes the folder the bundle is built in: `<out>.partial-export-<pid>` beside --out, so the finished
 * bundle is renamed to --out in one step on the same file system (rename(2) replaces an empty folder),
 * and a failed or stopped export leaves --out as it was. Its name says it is an unfinished export and
 * whose (a leftover of a killed export never blocks a later one, which builds beside --out too).
 *
 * Where that cannot be — an existing empty --out whose parent the user may not write, a mount point
 * (a rename cannot cross file systems), or the working directory — the bundle is built in `.partial-export-<pid>` inside --out and
 * its files moved up when complete, MANIFEST.json last.
 */
export function makeWorkFolder(target: ExportTarget): void {
  const { out } = target;
  const beside = `${resolve(out)}.partial-export-${process.pid}`;
  const inside = join(out, `.partial-export-${process.pid}`);
  // A folder renamed onto the working directory would leave this shell's in a deleted folder.
  let mountPoint = target.existing !== undefined && resolve(out) === process.cwd();
  if (target.existing !== undefined && !mountPoint) {
    try {
      mountPoint = statSync(out).dev !== statSync(dirname(resolve(out))).dev;
    } catch {
      mountPoint = false;
    }
  }
  const make = (dir: string): void => {
    // A folder of this name is a leftover of an export killed under the same pid: this process is alive.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  };
  if (!mountPoint) {
    try {
      make(beside);
      target.work = beside;
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const refused = code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
      if (target.existing === undefined || !refused) {
        folderError(out, reasonOf(err), `${dirname(resolve(out))} does not let a folder be made in it`, err);
      }
    }
  }
  try {
    make(inside);
  } catch (err) {
    folderError(out, reasonOf(err), `${out} does not let a file be made in it`, err);
  }
  target.work = inside;
  target.inside = true;
}

/** Puts the finished bundle at --out. */
export function publish(target: ExportTarget): void {
  const { out, work } = target;
  if (target.inside) {
    const names = readdirSync(work).sort(
      (a, b) => Number(a === 'MANIFEST.json') - Number(b === 'MANIFEST.json'),
    );
    const moved: string[] = [];
    try {
      for (const name of names) {
        renameSync(join(work, name), join(out, name));
        moved.push(name);
      }
    } catch (err) {
      for (const name of moved) rmSync(join(out, name), { recursive: true, force: true });
      throw err;
    }
    rmdirSync(work);
    return;
  }
  // The bundle takes --out's place, and so its mode too.
  if (target.existing !== undefined) chmodSync(work, target.existing);
  try {
    renameSync(work, resolve(out));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new ConfigError(
        `export folder ${out} was created or written to by something else during the export; nothing was put in it: choose a new folder`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Removes what a failed or stopped export made: the unfinished bundle, and the folders it made above --out. */
export function discard(target: ExportTarget): void {
  if (target.work !== '') rmSync(target.work, { recursive: true, force: true });
  removeMadeAbove(target.madeAbove);
}
