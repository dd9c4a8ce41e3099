/**
 * What one archive member is: the entry types and the visitor contract the parser hands members
 * through, and the decoding of a header block plus the pending pax/GNU records into a TarEntry.
 */
import { LimitExceededError } from '../core/errors.js';
import {
  cString,
  type HasCorrupt,
  headerName,
  parseDecimal,
  parseGoInt,
  parseNumeric,
  parseNumericLenient,
} from './tar-fields.js';
import { storedNameLength } from './tar-name.js';
import type { Pending } from './tar-pax.js';
import { type PaxSparseFormat, paxSparseFormat } from './tar-sparse.js';

export type TarEntryType =
  | 'file'
  | 'hardlink'
  | 'symlink'
  | 'char-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'other';

/** One archive member as the visitor sees it; metadata records (pax, GNU L/K) are already applied. */
export interface TarEntry {
  /**
   * The stored name (GNU.sparse.name of a pax sparse member, GNU long name, pax `path` or the
   * header's prefix/name, in Go's order), decoded by decodeTarName, not yet normalized.
   */
  name: string;
  /** Link target for hardlinks and symlinks, as stored (decoded the same way). */
  linkname: string;
  type: TarEntryType;
  /**
   * The typeflag character (`'0'`, `'S'`, …) as Go reads it: a v7 NUL is `'0'`, or `'5'` when the
   * final name ends in `/` (see finalTypeflag).
   */
  typeflag: string;
  /** Logical size of the content; for sparse files the expanded size, holes included. */
  size: number;
  mode: number;
  sparse: boolean;
}

/** Receives one entry's logical content. Chunks are views valid only during the call. */
export interface TarEntrySink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/** Called for each member; return a sink to receive its content, or null to skip it unread. */
export interface TarVisitor {
  onEntry(entry: TarEntry): TarEntrySink | null;
}

/** The reader of the current header: where it starts, for messages, and its typed error. */
export interface HeaderContext extends HasCorrupt {
  readonly headerOffset: number;
}

/** A decoded header: the entry the visitor sees and the size of the data stored after the header. */
export interface HeaderEntry {
  entry: TarEntry;
  /** The member's typeflag once its name is final: a v7 NUL is `'0'`, or `'5'` for a name ending in `/`. */
  typeflag: string;
  /**
   * Data bytes the member stores: the pax `size` record, else the header's size field. For a pax
   * sparse member these are the stored runs (and a 1.0 map), while entry.size is the real size.
   */
  stored: number;
  /** Where a pax sparse member keeps its map; null for every other member ('S' included). */
  paxSparse: PaxSparseFormat | null;
}

/**
 * The entry a header describes, with the pending records applied as Go's archive/tar applies them
 * (reader.go next, mergePAX, readGNUSparsePAXHeaders), since runtimes extract layers with it. Sizes
 * and names are checked. `rawTypeflag` is the header's byte as it stands (`'\0'` for a v7 NUL).
 */
export function buildEntry(
  blk: Buffer,
  rawTypeflag: string,
  rawSize: number,
  p: Pending,
  maxPathLength: number,
  ctx: HeaderContext,
): HeaderEntry {
  // Go applies the pax `path` over the header's name, then a non-empty GNU long name, whatever
  // order the records came in.
  const plainName = p.longName || (p.pax.get('path') ?? headerName(blk));
  const typeflag = finalTypeflag(rawTypeflag, plainName);
  const paxSparse = typeflag === 'S' ? null : paxSparseFormat(p.pax);
  // Then, for a pax sparse member only, GNU.sparse.name, after the typeflag was settled.
  const name = (paxSparse !== null ? p.pax.get('GNU.sparse.name') : undefined) ?? plainName;
  // An empty long link, like an empty pax value, leaves the field below it in force.
  const linkname = p.longLink || (p.pax.get('linkpath') ?? cString(blk, 157, 100));
  for (const [what, value] of [
    ['name', name],
    ['link target', linkname],
  ] as const) {
    const length = storedNameLength(value);
    if (length > maxPathLength) {
      throw new LimitExceededError(
        'maxPathLength',
        length,
        `tar member at byte ${ctx.headerOffset} has a ${what} of ${length} characters, more than maxPathLength (${maxPathLength})`,
      );
    }
  }
  const stored = storedSize(typeflag, rawSize, p.pax.get('size'), ctx);
  let size = stored;
  if (paxSparse !== null) {
    if (isHeaderOnly(typeflag)) throw ctx.corrupt(`a member of type '${typeflag}' cannot be sparse`);
    // Without either record Go keeps the stored size as the real one.
    const real = p.pax.get('GNU.sparse.size') ?? p.pax.get('GNU.sparse.realsize');
    if (real !== undefined) size = parseDecimal(real, 'sparse real size', ctx);
  }
  if (typeflag === 'S') size = parseNumeric(blk, 483, 12, 'sparse real size', ctx);
  const mode = parseNumericLenient(blk, 100, 8);
  const sparse = typeflag === 'S' || paxSparse !== null;
  return {
    entry: { name, linkname, type: entryType(typeflag), typeflag, size, mode, sparse },
    typeflag,
    stored,
    paxSparse,
  };
}

/**
 * A v7 regular file (typeflag NUL) whose name, pax path and GNU long name applied, ends in `/` is a
 * directory, as to Go's reader.go next ("Legacy archives use trailing slash for directories"), and
 * so carries no data whatever its size says: the bytes after its header are the next header. Read
 * as a file, its "data" would hide a whole member (a backdoor) that the runtime extracts. Any
 * other NUL member is a regular file ('0'); only NUL is converted, not '0'.
 */
function finalTypeflag(rawTypeflag: string, name: string): string {
  if (rawTypeflag !== '\0') return rawTypeflag;
  return name.endsWith('/') ? '5' : '0';
}

/**
 * The one reading of the pax `size` record (the parser takes the stored size from here too). Go
 * parses it as any 64-bit integer and reads no data for header-only types, so only members that
 * carry data need a size that fits.
 */
function storedSize(
  typeflag: string,
  rawSize: number,
  paxSize: string | undefined,
  ctx: HeaderContext,
): number {
  if (paxSize === undefined) return rawSize;
  if (!isHeaderOnly(typeflag)) return parseDecimal(paxSize, 'pax size', ctx);
  const v = parseGoInt(paxSize);
  if (v === null) throw ctx.corrupt(`pax size "${paxSize.slice(0, 32)}" is not a decimal number`);
  return Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

/** Typeflags that never carry data, whatever their size says (Go's isHeaderOnlyType). */
export function isHeaderOnly(typeflag: string): boolean {
  return typeflag.length === 1 && '123456'.includes(typeflag);
}

/** Member data bytes that follow the header; header-only types carry none whatever `size` says (as Go's archive/tar). */
export function entryDataSize(typeflag: string, size: number): number {
  return isHeaderOnly(typeflag) ? 0 : size;
}

/** The kind of member a typeflag stands for ('7' contiguous and 'S' sparse files are files). */
function entryType(typeflag: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '7':
    case 'S':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char-device';
    case '4':
      return 'block-device';
    case '5':
    case 'D':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}
