/**
 * The budget on counted pulls (Docker Hub manifest GETs): the run's own `maxPulls`, and the
 * registry's remaining quota as the rate limiter learnt it from `ratelimit-remaining`.
 */
import { BudgetExhaustedError } from '../core/errors.js';
import type { RateLimiter } from './rate-limit.js';
import type { RequestStats } from './stats.js';

/** One reserved pull: spent on a 2xx, released otherwise. Both are idempotent. */
export interface PullReservation {
  /** Counts the pull (before waking waiters, so they see it spent) and releases the reservation. */
  spend(host: string, url: string): void;
  release(): void;
}

/** Counted pulls of one HttpClient; `stats.countedPulls` is the spent part. */
export class PullBudget {
  private reserved = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    private readonly max: number | undefined,
    private readonly rateLimiter: RateLimiter,
    private readonly stats: RequestStats,
  ) {}

  /**
   * Reserves one counted pull. While other pulls are in flight the outcome is not known yet, so a
   * request that would exceed the budget waits for them: refused only once the budget is truly spent.
   */
  async reserve(host: string, signal?: AbortSignal): Promise<PullReservation> {
    const max = this.max;
    for (;;) {
      this.rateLimiter.assertPullsAvailable(host);
      if (max === undefined || this.stats.countedPulls + this.reserved < max) break;
      if (this.reserved === 0 || signal?.aborted) {
        throw new BudgetExhaustedError(
          `the budget of ${max} counted pulls for this run is spent; resume in a later run`,
        );
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.reserved += 1;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.settle();
    };
    return {
      spend: (host, url) => {
        if (!held) return;
        this.stats.recordPull(host, url, this.max);
        release();
      },
      release,
    };
  }

  /** Wakes requests waiting for the outcome of in-flight pulls. */
  private settle(): void {
    this.reserved -= 1;
    for (const wake of this.waiters.splice(0)) wake();
  }
}
