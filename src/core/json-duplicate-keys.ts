import { fieldPath } from './field-path.js';

/** A key that one JSON object holds twice. */
export interface DuplicateKey {
  /** The key, as JSON.parse reads it (escapes decoded: `"a"` and `"\u0061"` are one key). */
  key: string;
  /** The object that holds it, as fieldPath writes it (`rules[2]`; `''` for the top level). */
  objectPath: string;
  /** The 1-based line of its second occurrence. */
  line: number;
}

interface ObjectFrame {
  kind: 'object';
  keys: Set<string>;
  /** The next string is a key: after `{` or `,`; a value after `:`. */
  expectingKey: boolean;
  key: string | undefined;
}

interface ArrayFrame {
  kind: 'array';
  index: number;
}

/**
 * The first key that an object of `text` holds twice, or undefined. JSON.parse keeps the last value of a
 * repeated key without a word, so a file edited by hand (a rule's `sha256` pasted twice, the second a
 * typo) would lose a value silently. `text` must be JSON that JSON.parse accepted: only the structure is
 * followed here, not validated.
 */
export function firstDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Array<ObjectFrame | ArrayFrame> = [];
  let line = 1;
  const pathOf = (depth: number): string =>
    fieldPath(stack.slice(0, depth).map((f) => (f.kind === 'array' ? f.index : (f.key ?? ''))));
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '\n') line++;
    else if (c === '{') stack.push({ kind: 'object', keys: new Set(), expectingKey: true, key: undefined });
    else if (c === '[') stack.push({ kind: 'array', index: 0 });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      if (top?.kind === 'array') top.index++;
      else if (top?.kind === 'object') top.expectingKey = true;
    } else if (c === '"') {
      const end = endOfString(text, i);
      if (top?.kind === 'object' && top.expectingKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return { key, objectPath: pathOf(stack.length - 1), line };
        top.keys.add(key);
        top.key = key;
        top.expectingKey = false;
      }
      i = end;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start` (a string holds no raw line end). */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}
