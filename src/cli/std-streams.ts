/**
 * Standard output and error whose reader may stop reading early (`hubcrawl report | head`, a pager quit
 * before the end). Node meets EPIPE and emits it as an 'error' event on the stream; with no listener that
 * crashes the process with a stack trace and exit 1, the code that says "some items failed". A reader
 * leaving is no failure of the command: what it read was written, the rest is dropped, and the command
 * ends with its own exit code. Any other failure to write stdout (a full disk under `> study.csv`) is
 * kept for main, which says the output is incomplete and exits non-zero.
 */

let readerGone = false;
let failure: NodeJS.ErrnoException | undefined;

/** Whether `err` says the reader of a pipe has gone (or the stream it closed was written again). */
export function isReaderGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  return code === 'EPIPE' || (readerGone && code === 'ERR_STREAM_DESTROYED');
}

/** Listens for the streams' errors; called once, before any command writes. */
export function watchStandardStreams(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (isReaderGone(err)) readerGone = true;
    else failure ??= err;
  });
  // Nothing is left to tell of a failure to write stderr: ignored, as the logger's own writes are.
  process.stderr.on('error', () => {});
}

/**
 * A failure to write stdout other than its reader leaving, if one happened: asked once the command is
 * done, after what it wrote has gone out (a failed write's 'error' event comes a tick after the write).
 */
export async function stdoutFailure(): Promise<NodeJS.ErrnoException | undefined> {
  if (!process.stdout.destroyed) await new Promise<void>((done) => process.stdout.write('', () => done()));
  await new Promise<void>((done) => setImmediate(done));
  return failure;
}
