import { describe, expect, it } from 'vitest';
import { runSteps, runStepsUntil, type Steps } from './steps.js';

/** Three steps that count what they did; `log` records each step and whether the generator was closed. */
function* counting(log: string[]): Steps<number, string> {
  try {
    for (let i = 1; i <= 3; i++) {
      log.push(`step ${i}`);
      yield i;
    }
    return 'all done';
  } finally {
    log.push('closed');
  }
}

describe('runStepsUntil', () => {
  it('runs every step when nothing stops it, as runSteps does', async () => {
    const log: string[] = [];
    expect(await runStepsUntil(counting(log), () => false)).toEqual({ finished: true, result: 'all done' });
    expect(runSteps(counting([]))).toBe('all done');
    expect(log).toEqual(['step 1', 'step 2', 'step 3', 'closed']);
  });

  it('stops before the next step once asked, with the last progress, and closes the steps', async () => {
    const log: string[] = [];
    const outcome = await runStepsUntil(counting(log), () => log.length === 2);
    expect(outcome).toEqual({ finished: false, progress: 2 });
    expect(log).toEqual(['step 1', 'step 2', 'closed']);
  });

  it('hands stop each progress, so a caller knows how far steps that threw had come', async () => {
    function* failingAtThree(): Steps<number, string> {
      yield 1;
      yield 2;
      throw new Error('step 3 failed');
    }
    const seen: number[] = [];
    await expect(
      runStepsUntil(failingAtThree(), (progress) => {
        seen.push(progress);
        return false;
      }),
    ).rejects.toThrow('step 3 failed');
    expect(seen).toEqual([1, 2]);
  });

  it('sees a signal handled in a turn of the event loop between two steps', async () => {
    let stop = false;
    const log: string[] = [];
    // A handler that runs only when the event loop gets a turn, as a SIGINT handler does.
    setImmediate(() => {
      stop = true;
    });
    const outcome = await runStepsUntil(counting(log), () => stop);
    expect(outcome.finished).toBe(false);
  });
});
