/**
 * Per-host queues (concurrency and request rate) and the wait for a host paused by the rate limiter.
 */
import PQueue from 'p-queue';
import { isLoopbackHost } from '../core/host.js';
import type { RateLimiter } from './rate-limit.js';

export interface HostQueueOptions {
  concurrencyPerHost: number;
  requestsPerSecondPerHost?: number | undefined;
  rateLimiter: RateLimiter;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** One p-queue per host, created on first use. */
export class HostQueues {
  private readonly queues = new Map<string, PQueue>();

  constructor(private readonly opts: HostQueueOptions) {}

  /** The queue every request to `host` waits in until its response headers arrive. */
  queue(host: string): PQueue {
    let q = this.queues.get(host);
    if (!q) {
      // The request rate is politeness towards remote services; a registry on loopback is our own.
      const rps = isLoopbackHost(host) ? undefined : this.opts.requestsPerSecondPerHost;
      q = new PQueue({
        concurrency: this.opts.concurrencyPerHost,
        ...(rps !== undefined && rps > 0
          ? { intervalCap: Math.max(1, Math.floor(rps)), interval: 1000 }
          : {}),
      });
      this.queues.set(host, q);
    }
    return q;
  }

  /** Sleeps out the host's pause; a pause extended meanwhile is waited out too. */
  async waitForHost(host: string, signal?: AbortSignal): Promise<void> {
    const limiter = this.opts.rateLimiter;
    for (let i = 0; i < 64; i++) {
      const until = limiter.pausedUntil(host);
      const ms = limiter.remainingPauseMs(host);
      if (ms <= 0) return;
      await this.opts.sleep(ms, signal);
      limiter.pauseServed(host, until);
    }
  }
}
