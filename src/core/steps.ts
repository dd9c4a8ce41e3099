import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Work that is done in steps: a generator yields between steps (what it has done so far) and returns its
 * result. Written once, it runs to its end at once (`runSteps`) or with a way to stop between steps
 * (`runStepsUntil`).
 */
export type Steps<Progress, Result> = Generator<Progress, Result, undefined>;

/** Runs every step now, synchronously, and returns the result. */
export function runSteps<R>(steps: Steps<unknown, R>): R {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** How `runStepsUntil` ended: the result, or what the last step had done when it stopped. */
export type StepsOutcome<P, R> = { finished: true; result: R } | { finished: false; progress: P };

/**
 * Runs the steps, giving the event loop a turn after each one, and stops before the next once `stop()`
 * says so (after the first step at the earliest, so that a stop always has a progress to tell). `stop`
 * is handed each step's progress: a caller keeps the last one to tell how far work that threw had come.
 * Synchronous work (better-sqlite3) holds the event loop, so a SIGINT handler runs only in such a turn:
 * without them a signal is seen when all the work is done, if at all.
 */
export async function runStepsUntil<P, R>(
  steps: Steps<P, R>,
  stop: (progress: P) => boolean,
): Promise<StepsOutcome<P, R>> {
  for (;;) {
    const step = steps.next();
    if (step.done) return { finished: true, result: step.value };
    await nextTurn();
    if (stop(step.value)) {
      steps.return(undefined as R);
      return { finished: false, progress: step.value };
    }
  }
}
