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
