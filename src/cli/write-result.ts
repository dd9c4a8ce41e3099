import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { ConfigError, FatalError } from '../core/errors.js';
import { realPathOf } from '../core/real-path.js';
import { writeOut } from './output.js';
import { OutputFile, statOrNothing } from './output-file.js';
import { isReaderGone } from './std-streams.js';

/** The files SQLite keeps beside a dataset: writing over any of them loses or corrupts data. */
const DATASET_FILES = ['', '-wal', '-shm', '-journal'];

/** Same file: the same path once symlinks are resolved, or the same inode (a hardlink to it). */
function sameFile(a: string, b: string): boolean {
  if (realPathOf(a) === realPathOf(b)) return true;
  const sa = statOrNothing(a);
  const sb = statOrNothing(b);
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
 * Writes a command's result to `out` (whole, in one call, put in place only once whole: OutputFile) or
 * to stdout. A file that cannot be written fails naming it (exit 2, or 3 when the disk is full): a
 * scheduled `report --out` must fail loudly, not exit 0 with no report.
 */
export async function writeResult(
  text: string,
  out: string | undefined,
  opts: { dataset?: string } = {},
): Promise<void> {
  if (out === undefined) {
    await new Promise<void>((done, fail) =>
      process.stdout.write(text, (err) => {
        // A reader that left early (`| head`) took what it wanted; any other failure is the command's.
        if (err && !isReaderGone(err)) fail(cannotWriteStdout(err));
        else done();
      }),
    );
    return;
  }
  if (opts.dataset !== undefined) refuseDatasetAsOutput(out, opts.dataset);
  const file = OutputFile.open(out);
  try {
    await writeFile(file.writePath, text, file.createOptions);
    file.publish();
  } catch (err) {
    file.abandon();
    throw err instanceof ConfigError || err instanceof FatalError ? err : file.cannotWrite(err);
  }
}

/**
 * Where a streamed result goes: `write` waits while the sink is full and says whether the reader still
 * wants more (false once stdout's reader has gone, as `| head` does); `end` flushes and closes a file.
 */
export interface ResultSink {
  write(text: string): Promise<boolean>;
  end(): Promise<void>;
  /**
   * The result failed part way: an `--out` file's temp file is closed and removed, so no cut-off result is
   * left to be taken for a whole one and the file keeps what it held (stdout cannot take back what it
   * printed; the exit code and message say it).
   */
  discard(): Promise<void>;
}

/** Stdout could not take the result (a full disk under `> study.csv`): the output there is cut short. */
export function cannotWriteStdout(err: unknown): FatalError {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new FatalError(
    `cannot write the result to standard output (${reason}): what was written there is incomplete; free some space or write with --out, then run the same command again`,
    { cause: err },
  );
}

/**
 * A sink for results too large to build in memory first (`query` over millions of rows): stdout, or the
 * file `out`, written as rows arrive. The same refusals as writeResult; a write error ends the next call.
 */
export function openResultSink(out: string | undefined, opts: { dataset?: string } = {}): ResultSink {
  if (out !== undefined && opts.dataset !== undefined) refuseDatasetAsOutput(out, opts.dataset);
  const file = out === undefined ? undefined : OutputFile.open(out);
  const stream: Writable =
    file === undefined
      ? process.stdout
      : createWriteStream(file.writePath, { flags: file.createOptions.flag, mode: file.createOptions.mode });
  let failed: unknown;
  stream.on('error', (err) => {
    failed ??= err;
  });
  // Stdout's reader leaving early is no error: the rows it wanted were written.
  const check = (): boolean => {
    if (failed === undefined) return true;
    if (file === undefined && isReaderGone(failed)) return false;
    throw file === undefined ? cannotWriteStdout(failed) : file.cannotWrite(failed);
  };
  return {
    async write(text) {
      if (!check()) return false;
      await writeOut(stream, text);
      return check();
    },
    async end() {
      check();
      if (file === undefined) return;
      await new Promise<void>((resolve) => {
        stream.once('error', () => resolve());
        stream.end(() => resolve());
      });
      check();
      file.publish();
    },
    async discard() {
      if (file === undefined) return;
      // A stream that failed (a missing folder) has closed already: waiting for 'close' would never end.
      if (!stream.closed) {
        await new Promise<void>((resolve) => {
          stream.once('close', () => resolve());
          stream.destroy();
        });
      }
      file.abandon();
    },
  };
}
