/**
 * A strict RFC 4180 reader (csv-parse is not a dependency) and python3's csv module as an outside
 * oracle, so the report's CSV is checked by two independent parsers.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface ParsedCsv {
  records: string[][];
  /** The terminator after each record: '\r\n', or '' for a last record without one. */
  terminators: string[];
}

/** Parses RFC 4180 text; throws on a bare LF or CR outside quotes or a stray quote, so CRLF is enforced. */
export function parseCsv(text: string): ParsedCsv {
  const records: string[][] = [];
  const terminators: string[] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  const endField = () => {
    record.push(field);
    field = '';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i += 1;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\r') {
          throw new Error(`character after a closing quote at offset ${i}`);
        }
      } else {
        field += c;
        i += 1;
      }
      continue;
    }
    if (c === '"') {
      if (field !== '') throw new Error(`quote inside an unquoted field at offset ${i}`);
      quoted = true;
      i += 1;
    } else if (c === ',') {
      endField();
      i += 1;
    } else if (c === '\r' && text[i + 1] === '\n') {
      endField();
      records.push(record);
      terminators.push('\r\n');
      record = [];
      i += 2;
    } else if (c === '\r' || c === '\n') {
      throw new Error(`bare ${c === '\r' ? 'CR' : 'LF'} outside quotes at offset ${i}`);
    } else {
      field += c;
      i += 1;
    }
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || record.length > 0) {
    endField();
    records.push(record);
    terminators.push('');
  }
  return { records, terminators };
}

const execFileP = promisify(execFile);

const PYTHON_READER = `
import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    print(json.dumps(list(csv.reader(f, strict=True))))
`;

/** The records of a CSV file as python3's csv module reads them. */
export async function pythonCsvRecords(file: string): Promise<string[][]> {
  const { stdout } = await execFileP('python3', ['-c', PYTHON_READER, file], { maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as string[][];
}
