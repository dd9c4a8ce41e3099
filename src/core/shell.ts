/**
 * `word` as one POSIX shell word, for a command the user is told to run or shown: left as it is when no
 * character in it means anything to a shell, else single-quoted (`it's here` → `'it'\''s here'`).
 */
export function shellQuoted(word: string): string {
  return /^[\w./:@%+=,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
