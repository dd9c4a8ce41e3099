import { FatalError } from '../core/errors.js';
import { isPlainObject } from '../core/plain-object.js';

/**
 * A JSON column of the dataset, parsed. hubcrawl writes each with JSON.stringify; text that does not parse,
 * or a value `expected` refuses, means the file was edited or damaged. That stops the caller with the row
 * named, not a bare SyntaxError: a FatalError, so a crawl stops resumably (its claimed items back to
 * pending) rather than fail whichever item happened to read the row, and a command says what to do.
 * `where` names the row (`crawl_runs row 3`) and its column (`config_json`).
 */
export function parseStoredJson(
  json: string,
  where: StoredColumn,
  expected: { what: string; is: (value: unknown) => boolean } = { what: 'valid JSON', is: () => true },
): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw damaged(where, expected.what);
  }
  if (!expected.is(value)) throw damaged(where, expected.what);
  return value;
}

/** Where a stored value is: the row, as a person finds it (`crawl_runs row 3`), and the column. */
export interface StoredColumn {
  row: string;
  column: string;
}

/** A JSON object (not an array, not null), as most stored columns hold. */
export const AN_OBJECT = { what: 'JSON object', is: isPlainObject };

/** A JSON object whose every value is a string. */
export const AN_OBJECT_OF_STRINGS = {
  what: 'JSON object of strings',
  is: (v: unknown) => isPlainObject(v) && Object.values(v).every((x) => typeof x === 'string'),
};

function damaged(where: StoredColumn, what: string): FatalError {
  return new FatalError(
    `the dataset's ${where.row} holds no ${what} in ${where.column}: the file was edited or damaged; ` +
      'restore it from a copy, or crawl into a new dataset',
  );
}
