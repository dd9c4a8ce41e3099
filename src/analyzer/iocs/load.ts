/**
 * Loading IOC set files: JSON → zod validation → one ConfigError that names the file and the field
 * (`iocs/x.json: rules[3].sha256: expected 64 hex characters`), so a user can fix it.
 */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { fieldPath } from '../../core/field-path.js';
import { firstDuplicateKey } from '../../core/json-duplicate-keys.js';
import { lineAndColumnAt } from '../../core/text-lines.js';
import { type IocSet, iocSetSchema } from './schema.js';

/** `['rules', 3, 'sha256']` → `rules[3].sha256`. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  return fieldPath(path) || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  return issue.message;
}

/** Validate already-parsed JSON as an IOC set; `source` names it in errors (usually the file path). */
export function parseIocSet(json: unknown, source: string): IocSet {
  const parsed = iocSetSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `${source}: ${formatIssuePath(i.path)}: ${describeIssue(i)}`,
    );
    const more = lines.length > 1 ? ` (and ${lines.length - 1} more: ${lines.slice(1).join('; ')})` : '';
    throw new ConfigError(`${lines[0]}${more}`, { cause: parsed.error });
  }
  const set = parsed.data;
  const seen = new Map<string, number>();
  set.rules.forEach((rule, i) => {
    const first = seen.get(rule.id);
    if (first !== undefined) {
      throw new ConfigError(
        `${source}: rules[${i}].id: duplicate rule id "${rule.id}" (first used at rules[${first}]); rule ids must be unique within a set`,
      );
    }
    seen.set(rule.id, i);
  });
  return set;
}

/**
 * Read, parse and validate one IOC set file. A leading UTF-8 byte order mark is dropped: Windows editors
 * and PowerShell write one, and JSON.parse would refuse the invisible character. Bytes that are not UTF-8
 * are refused, not replaced: a Latin-1 `é` in a glob would become U+FFFD, which no stored path holds, and
 * the rule would silently never match.
 */
export async function loadIocSetFile(path: string): Promise<IocSet> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw unreadable(path, err);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    const line = bytes.subarray(0, firstInvalidUtf8(bytes)).toString('latin1').split('\n').length;
    throw new ConfigError(
      `${path}: not UTF-8 text (line ${line} holds a byte that is not); save the file as UTF-8`,
      { cause: err },
    );
  }
  let json: unknown;
  const jsonText = text.replace(/^\uFEFF/, '');
  try {
    json = JSON.parse(jsonText);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON (${jsonSyntaxReason(err as Error, jsonText)})`, {
      cause: err,
    });
  }
  const repeated = firstDuplicateKey(text);
  if (repeated !== undefined) {
    const where = repeated.objectPath === '' ? 'the top-level object' : repeated.objectPath;
    throw new ConfigError(
      `${path}: ${where} holds the key ${JSON.stringify(repeated.key)} twice (again on line ${repeated.line}); JSON keeps only the last value, so the other would be dropped without a word: keep one`,
    );
  }
  return parseIocSet(json, path);
}

/**
 * JSON.parse's reason on one line, as every error is (V8 quotes the text near some errors, line ends
 * and all), its `at position 29` (an offset of `text`; newer V8 adds `(line 2 column 9)`) made the line
 * and column of the file an editor jumps to.
 */
function jsonSyntaxReason(err: Error, text: string): string {
  return err.message
    .replace(/\s+/g, ' ')
    .replace(/ at position (\d+)(?: \(line \d+ column \d+\))?$/, (_, offset: string) => {
      const { line, column } = lineAndColumnAt(text, Number(offset));
      return ` at line ${line}, column ${column}`;
    });
}

/**
 * The error for an IOC set file that cannot be read: the errno (`ENOENT: no such file or directory`),
 * without the system call and path Node appends (the message names the file already), and what to do.
 */
function unreadable(path: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = (err as Error).message.replace(/, [a-z]+(?: '.*')?$/, '');
  const todo = code === 'EISDIR' ? 'name the JSON file of the set, not a folder' : 'check the path';
  return new ConfigError(`${path}: cannot read the IOC set file (${why}); ${todo}`, { cause: err });
}

/** The offset of the first byte of `bytes` that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  // The longest prefix that decodes (a sequence it cuts in two may still complete): found by halving.
  let good = 0;
  let bad = bytes.length;
  while (bad - good > 1) {
    const mid = (good + bad) >> 1;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      good = mid;
    } catch {
      bad = mid;
    }
  }
  return good;
}
