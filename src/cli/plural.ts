/**
 * A count with its noun, as every line the CLI prints gives one: `1 image`, `0 images`, `2 images`
 * (`counted(n, 'failed item')`, or with an irregular plural, `counted(n, 'index', 'indexes')`).
 */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
