import { spawnSync } from 'node:child_process';

/**
 * Runs `script` (ES module lines; tsx loaded, so it may import the project's .ts files by URL) in a child
 * Node whose heap is limited to `heapMiB`: a test that memory stays bounded on a crafted input fails
 * there as the crawler would, out of heap, rather than passing on the test runner's larger heap.
 */
export function runInLimitedHeap(
  heapMiB: number,
  script: readonly string[],
): { stdout: string; stderr: string } {
  const run = spawnSync(
    process.execPath,
    [
      `--max-old-space-size=${heapMiB}`,
      '--import',
      'tsx',
      '--input-type=module',
      '--eval',
      script.join('\n'),
    ],
    { encoding: 'utf8' },
  );
  return { stdout: run.stdout, stderr: run.stderr };
}

/** A module beside the calling test, as a script for runInLimitedHeap imports it. */
export function importable(relative: string, from: string): string {
  return JSON.stringify(new URL(relative, from).href);
}
