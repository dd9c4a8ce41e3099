/**
 * SIGINT and SIGTERM that arrive while `crawl`, `scan` or `rematch` starts up (loading the crawler, reading
 * the config and IOC sets, opening the dataset), before the command installs its own handlers. Node's
 * default would end the process with the signal (exit 130, no notice); held here, the signal is handed to
 * the command, which stops at once as for any interrupt: exit 3, the notice, a run the same command
 * resumes or (a rematch) redoes (docs/cli.md "Interrupting and resuming"). Only those commands hold them:
 * `query | head` or a Ctrl-C on `report` must still end the process.
 */
import { onStopSignal } from './stop-signals.js';

let received: NodeJS.Signals | undefined;
let release: (() => void) | undefined;

/** Starts holding SIGINT and SIGTERM: the first is remembered, a second ends the process (stop-signals.ts). */
export function holdEarlySignals(): void {
  received = undefined;
  release = onStopSignal((signal) => {
    received = signal;
  });
}

/**
 * Stops holding them and returns the first one that arrived meanwhile, if any. The command installs its
 * own handlers first, so no signal falls between the two.
 */
export function releaseEarlySignals(): NodeJS.Signals | undefined {
  release?.();
  release = undefined;
  const signal = received;
  received = undefined;
  return signal;
}
