import { chmodSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError, FatalError } from '../core/errors.js';
import { realPathOf } from '../core/real-path.js';
import { EXIT } from './exit.js';

/** Codes of a write the place could not take: a full disk or quota, a file-size limit, a failing device. */
const NO_ROOM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO']);

/**
 * An `--out FILE` being written. A result goes to a temp file beside FILE's real path
 * (`.FILE.partial-<pid>`) and is renamed over FILE only once whole, so a full disk, a failed query, a
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

  private constructor(private readonly out: string) {
    const real = realPathOf(out);
    const stats = statSync(real, { throwIfNoEntry: false });
    this.existed = stats !== undefined;
    if (stats !== undefined && !stats.isFile()) {
      this.writePath = out;
      this.settled = true;
      return;
    }
    this.target = real;
    this.mode = stats === undefined ? undefined : stats.mode & 0o7777;
    this.writePath = join(dirname(real), `.${basename(real)}.partial-${process.pid}`);
    process.once('SIGINT', this.stop);
    process.once('SIGTERM', this.stop);
  }

  static open(out: string): OutputFile {
    return new OutputFile(out);
  }

  /** Puts the whole result in place of `out` (keeping the mode of the file it replaces). */
  publish(): void {
    if (this.settled || this.target === undefined) return;
    this.release();
    try {
      if (this.mode !== undefined) chmodSync(this.writePath, this.mode);
      renameSync(this.writePath, this.target);
    } catch (err) {
      this.removeTemp();
      throw this.cannotWrite(err);
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
    return new ConfigError(
      `cannot write --out ${this.out} (${reason}); check that its folder exists and is writable`,
      { cause: err },
    );
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
    process.off('SIGINT', this.stop);
    process.off('SIGTERM', this.stop);
  }

  private removeTemp(): void {
    rmSync(this.writePath, { force: true });
  }
}
