/**
 * Appends every item of `items` to `target`. Not `target.push(...items)`: a spread passes each item as an
 * argument on the stack, and V8 throws "Maximum call stack size exceeded" past about 125 000 of them,
 * which a real input reaches (an md5sums file of a package with that many files, a seed file of a large
 * study).
 */
export function appendAll<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item);
}
