/**
 * SIGINT and SIGTERM: how a user (Ctrl-C) or a supervisor (systemd, `docker stop`, cron's timeout) asks a
 * command to stop.
 */

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Calls `handler` on the first SIGINT or SIGTERM from now on, and returns what stops listening. Once the
 * first has been handled, neither is listened for any more: a second ends the process as Node's default
 * does (killed by the signal, at once), even while a synchronous step then holds the event loop. That is
 * the way out of a stop that takes too long, and it loses no more than a kill, which every command is
 * built to survive. (A signal that comes while a synchronous step already holds the loop waits for it,
 * first or second: only SIGKILL or SIGQUIT end the process then.) Node falls back to the default only when
 * no listener is left: any other SIGINT or SIGTERM listener in the process would keep swallowing them.
 */
export function onStopSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  const release = (): void => {
    for (const s of STOP_SIGNALS) process.off(s, first);
  };
  const first = (signal: NodeJS.Signals): void => {
    release();
    handler(signal);
  };
  for (const s of STOP_SIGNALS) process.on(s, first);
  return release;
}
