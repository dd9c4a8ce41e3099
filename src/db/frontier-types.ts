/**
 * The frontier's public types: what an item is, what may be added, and the options of its transitions
 * (frontier.ts has the state machine and its crash-safety invariants).
 */

export type FrontierKind =
  | 'namespace'
  | 'search'
  | 'catalog'
  | 'repository'
  | 'reference'
  | 'manifest'
  | 'layer';

export type FrontierState = 'pending' | 'in-progress' | 'done' | 'failed';

export interface FrontierItem<P = unknown> {
  id: number;
  kind: FrontierKind;
  key: string;
  payload: P;
  parentId: number | null;
  state: FrontierState;
  attempts: number;
  lastError: string | null;
  lastErrorCode: string | null;
  updatedAt: string;
}

/** A unit of work to add: unique by (kind, key); the payload is JSON. */
export interface NewFrontierItem {
  kind: FrontierKind;
  key: string;
  payload?: unknown;
}

export interface EnqueueOptions {
  /** Put a done or failed item back to pending (attempts reset), e.g. to re-list a repository's tags. */
  force?: boolean;
}

export interface FailOptions {
  /** Whether another attempt may succeed (RetryableError, 5xx, resets). */
  retryable: boolean;
  /** Retryable items go back to pending until they have failed this many times. */
  maxAttempts: number;
}

/** Which failed items retryFailed puts back to pending (every one under the attempt limit by default). */
export interface RetryFailedOptions {
  /** Only items whose last error was retryable. */
  onlyRetryable?: boolean;
  /** Only items of these kinds (an empty list matches none; leave it out for every kind). */
  kinds?: readonly FrontierKind[];
  /** Only items whose key starts with this (a run's own run-keyed items: `<run id>|`). */
  keyPrefix?: string;
  /** Only these items (the layers a scan's own images need). */
  ids?: readonly number[];
}

/** The error recorded with a failure: a HubcrawlError, any Error, or a plain code and message. */
export type FrontierError = { code?: string; message: string } | Error;

export interface FrontierCount {
  kind: FrontierKind;
  state: FrontierState;
  count: number;
}
