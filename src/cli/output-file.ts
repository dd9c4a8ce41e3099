import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, renameSync, rmSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, FatalError } from '../core/errors.js';
import { realPathOf } from '../core/real-path.js';
import { EXIT } from './exit.js';
import { onStopSignal } from './stop-signals.js';

/** Codes of a write the place could not take: a full disk or quota, a file-size limit, a failing device. */
const NO_ROOM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO']);

/**
 * An `--out FILE` being written. A result goes to a temp file beside FILE's real path
 * (`.FILE.partial-<pid>-<random>`) and is renamed over FILE only once whole, so a full disk, a failed query, a
 * SIGINT or a kill never leaves a cut-off result where a whole one is expected, nor destroys the result
 * an earlier run left there. A symlink given as --out stays a symlink: its target is replaced. What is not
 * a regular file (`/dev/null`, a FIFO) is written in place, as no rename can stand in for it.
 *
 * While a temp file exists, SIGINT and SIGTERM remove it and end the command (exit 3), saying so.
 */
export class OutputFile {
  /** Where the bytes go: the temp file, or `out` itself when it is not a regular file. */
  readonly writePath: string;
  private readonly target: string | undefined;
  private readonly existed: boolean;
  private readonly mode: number | undefined;
  private settled = false;
  /** Stops listening for SIGINT and SIGTERM: set once a temp file is in use. */
  private stopListening: () => void = () => {};

  private constructor(private readonly out: string) {
    const real = realPathOf(out);
    const stats = statOrNothing(real);
    this.existed = stats !== undefined;
    if (stats !== undefined && !stats.isFile()) {
      this.writePath = out;
      this.settled = true;
      return;
    }
    this.target = real;
    this.mode = stats === undefined ? undefined : stats.mode & 0o7777;
    // Not guessable, and created exclusively (createOptions): a link planted at the name is not followed.
    const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
    this.writePath = join(dirname(real), `.${basename(real)}.partial-${suffix}`);
    this.stopListening = onStopSignal(this.stop);
  }

  /**
   * How to open `writePath`: the temp file created new, with the mode of the file it will replace from
   * the start (a 0600 report is never readable by others while it is written); `out` itself as it is.
   */
  get createOptions(): { flag: string; mode?: number } {
    if (this.target === undefined) return { flag: 'w' };
    return this.mode === undefined ? { flag: 'wx' } : { flag: 'wx', mode: this.mode };
  }

  static open(out: string): OutputFile {
    return new OutputFile(out);
  }

  /** Puts the whole result in place of `out` (keeping the mode of the file it replaces). */
  publish(): void {
    if (this.settled || this.target === undefined) return;
    this.release();
    try {
      // The mode given at creation passed through the umask: set it whole.
      if (this.mode !== undefined) chmodSync(this.writePath, this.mode);
      this.replaceTarget(this.target);
    } catch (err) {
      this.removeTemp();
      throw this.cannotWrite(err);
    }
  }

  /**
   * Renames the temp file over the target. A target that cannot be renamed over (a file bind-mounted into a
   * container, EBUSY; another filesystem, EXDEV) is overwritten in place with the whole result instead.
   */
  private replaceTarget(target: string): void {
    try {
      renameSync(this.writePath, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EBUSY' && code !== 'EXDEV') throw err;
      copyFileSync(this.writePath, target);
      this.removeTemp();
    }
  }

  /** The result failed part way: the temp file goes, and `out` stays as it was. Safe to call twice. */
  abandon(): void {
    if (this.settled) return;
    this.release();
    this.removeTemp();
  }

  /**
   * The error for a write to this file that failed: no room (a full disk, a size limit) is a FatalError,
   * exit 3, like a crawl that cannot write its dataset; anything else (a missing or unwritable folder)
   * is the user's path to fix, a ConfigError.
   */
  cannotWrite(err: unknown): ConfigError | FatalError {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code ?? (err as Error).message;
    if (code !== undefined && NO_ROOM_CODES.has(code)) {
      return new FatalError(
        `cannot write --out ${this.out} (${reason}): ${this.leftAs()}; free some space (or raise the file-size limit), then run the same command again`,
        { cause: err },
      );
    }
    // --out names the file itself: a folder there is the path to change, not one to make writable.
    const fix =
      code === 'EISDIR'
        ? 'it is a folder; give the path of a file to write'
        : 'check that its folder exists and is writable';
    return new ConfigError(`cannot write --out ${this.out} (${reason}); ${fix}`, { cause: err });
  }

  private leftAs(): string {
    if (this.target === undefined) return 'what was written there is incomplete';
    return this.existed ? `${this.out} was left as it was` : `${this.out} was not created`;
  }

  private readonly stop = (signal: NodeJS.Signals): void => {
    this.abandon();
    process.stderr.write(`hubcrawl: stopped by ${signal} before the result was whole; ${this.leftAs()}\n`);
    process.exit(EXIT.aborted);
  };

  private release(): void {
    this.settled = true;
    this.stopListening();
  }

  private removeTemp(): void {
    try {
      rmSync(this.writePath, { force: true });
    } catch {
      // No folder to be in (ENOTDIR): it was never created, and the error that ended the write says why.
    }
  }
}

/** The file's stats; undefined where there is none, also under a path that is no folder (ENOTDIR). */
export function statOrNothing(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
