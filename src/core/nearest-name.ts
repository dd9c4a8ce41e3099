/**
 * "Did you mean" hints for a misspelt name (a config file key). Modelled on commander's for misspelt
 * flags (more than 40% of the longer name left alike), but stricter: at most 2 edits where commander
 * allows 3, since a config key names one setting among many alike (`maxRetries`, `maxEntries`); case
 * ignored (`MaxPulls`); ties kept in the order the keys are given.
 */

const MAX_EDITS = 2;
const MIN_SIMILARITY = 0.4;

/**
 * Edits that turn `a` into `b`: insertions, deletions, substitutions, and swaps of two neighbouring
 * characters (a common slip: `maxPulsl`), each counted as one (optimal string alignment distance).
 */
export function editDistance(a: string, b: string): number {
  // rows[i][j]: edits from the first i characters of a to the first j of b.
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const same = a[i - 1] === b[j - 1];
      let best = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + (same ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The names of `known` nearest to `word` (several when tied, in the order given), or none when even the
 * nearest is too far off to be what was meant. Case is ignored: `MaxPulls` means `maxPulls`.
 */
export function nearestNames(word: string, known: Iterable<string>): string[] {
  let best: string[] = [];
  let bestDistance = MAX_EDITS;
  for (const name of known) {
    const distance = editDistance(word.toLowerCase(), name.toLowerCase());
    const longer = Math.max(word.length, name.length);
    if (distance > bestDistance || (longer - distance) / longer <= MIN_SIMILARITY) continue;
    if (distance < bestDistance) best = [];
    bestDistance = distance;
    best.push(name);
  }
  return best;
}
