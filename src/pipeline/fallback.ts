import { AuthError, type ErrorCode, PermanentError } from '../core/errors.js';
import type { NewFrontierItem } from '../db/frontier-types.js';
import type { CrawlContext } from './context.js';

/**
 * Whether the repository refused the content rather than the content being bad: 401/403/404 (deleted,
 * private, or never pushed there) or credentials refused. Another repository serving the same digest
 * may succeed; a digest mismatch or a corrupt body would fail the same everywhere.
 */
export function refusedByRepository(err: unknown): boolean {
  if (err instanceof AuthError) return true;
  return err instanceof PermanentError && [401, 403, 404].includes(err.status ?? 0);
}

/**
 * Content is keyed by digest, so the first repository that reached it is the one an item carries. When
 * that repository refuses it, try the others known (now) to hold the same digest, each once; rethrow the
 * first refusal when none serves it.
 */
export async function fromAnyRepository<T>(
  first: string,
  others: () => string[],
  fetch: (repository: string) => Promise<T>,
): Promise<T> {
  const tried = new Set<string>();
  let firstError: unknown;
  for (let repository: string | undefined = first; repository !== undefined; ) {
    tried.add(repository);
    try {
      return await fetch(repository);
    } catch (err) {
      if (!refusedByRepository(err)) throw err;
      firstError ??= err;
    }
    // Asked again after every refusal: other references may have been recorded meanwhile.
    repository = others().find((r) => !tried.has(r));
  }
  throw firstError;
}

/**
 * Failures of the content itself: the same bytes fail the same way from any repository (a digest names
 * them), so fetching them again elsewhere would only spend bandwidth, or pulls for a manifest.
 */
const CONTENT_FAULTS: ReadonlySet<string> = new Set<ErrorCode>([
  'DIGEST_MISMATCH',
  'CORRUPT_INPUT',
  'LIMIT_EXCEEDED',
  'UNSUPPORTED',
]);

/**
 * The item to enqueue for content another repository also references. If the content-keyed item already
 * failed, other than on the content itself (a refusal, a network failure), this repository gets an item of
 * its own (keyed by it), so a refusal by the first repository to reach a digest never hides it from the others.
 */
export function itemForRepository(
  ctx: CrawlContext,
  item: NewFrontierItem,
  repository: string,
): NewFrontierItem {
  const existing = ctx.frontier.find<{ repository?: string }>(item.kind, item.key);
  if (existing?.state !== 'failed' || existing.payload.repository === repository) return item;
  if (CONTENT_FAULTS.has(existing.lastErrorCode ?? '')) return item;
  return { ...item, key: `${item.key}|${repository}` };
}
