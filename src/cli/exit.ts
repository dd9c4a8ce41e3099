/** Exit codes are part of the contract (README "Exit codes"). */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** Finished, but some items failed (recorded in the dataset; retried next run). */
  itemsFailed: 1,
  /** Usage or config error. */
  usage: 2,
  /** Aborted: budget spent, rate limited for too long, a host stopped answering, interrupted, or a fatal error. Resumable. */
  aborted: 3,
} as const;
