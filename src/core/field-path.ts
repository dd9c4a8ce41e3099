/** A validation issue's path as a reader writes it: `['rules', 3, 'sha256']` → `rules[3].sha256`; `''` when empty. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}
