/**
 * The lines of `text` as `text.split('\n')` gives them, a carriage return at a line's end removed (CRLF
 * files), one at a time: a caller that keeps a little of each line (a dpkg database, an md5sums list of a
 * package with a million files) does not hold an array of every line while it parses.
 */
export function* textLines(text: string): Generator<string> {
  for (let start = 0; start <= text.length; ) {
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline;
    const line = text.slice(start, end);
    start = end + 1;
    yield line.endsWith('\r') ? line.slice(0, -1) : line;
  }
}

/**
 * The 1-based line and column of the character at UTF-16 `offset` of `text` (where JavaScript, JSON.parse
 * among it, counts), as an editor shows them: the column counts characters, so one outside the Basic
 * Multilingual Plane (an emoji, two UTF-16 units) moves it by one.
 */
export function lineAndColumnAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (let i = before.indexOf('\n'); i !== -1; i = before.indexOf('\n', i + 1)) line++;
  return { line, column: [...before.slice(lineStart)].length + 1 };
}
