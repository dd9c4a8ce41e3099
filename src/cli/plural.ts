/**
 * A count with its noun, as every line the CLI prints gives one: `1 image`, `0 images`, `2 images`
 * (`counted(n, 'failed item')`, or with an irregular plural, `counted(n, 'index', 'indexes')`).
 */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${agreeing(n, noun, plural)}`;
}

/** The word that agrees with a count: `one` for exactly one, `many` otherwise (`agreeing(n, 'has', 'have')`). */
export function agreeing(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}
