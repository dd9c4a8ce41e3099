import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';

/** The files SQLite keeps beside a dataset: writing over any of them loses or corrupts data. */
const DATASET_FILES = ['', '-wal', '-shm', '-journal'];

/** Same file: the same path once resolved, or the same inode (a symlink or hardlink to it). */
function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  const sa = statSync(a, { throwIfNoEntry: false });
  const sb = statSync(b, { throwIfNoEntry: false });
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

/**
 * Refuses an output path that is the dataset or one of SQLite's files beside it: `report --out
 * data.sqlite` would replace the whole study with a CSV. Call before any work, so nothing is half done.
 */
export function refuseDatasetAsOutput(out: string, dataset: string): void {
  for (const suffix of DATASET_FILES) {
    if (sameFile(out, `${dataset}${suffix}`)) {
      throw new ConfigError(
        `--out ${out} is the dataset's own file (${dataset}${suffix}); writing the result there would destroy the dataset: choose another file`,
      );
    }
  }
}

/**
 * Writes a command's result to `out` (whole, in one call) or to stdout. A file that cannot be written
 * is a ConfigError naming it: a scheduled `report --out` must fail loudly, not exit 0 with no report.
 */
export async function writeResult(
  text: string,
  out: string | undefined,
  opts: { dataset?: string } = {},
): Promise<void> {
  if (out === undefined) {
    await new Promise<void>((done, fail) => process.stdout.write(text, (err) => (err ? fail(err) : done())));
    return;
  }
  if (opts.dataset !== undefined) refuseDatasetAsOutput(out, opts.dataset);
  try {
    await writeFile(out, text);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(
      `cannot write --out ${out} (${reason}); check that its folder exists and is writable`,
      {
        cause: err,
      },
    );
  }
}
