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
  parseNumeric,
  parseNumericLenient,
} from './tar-fields.js';
import type { Pending } from './tar-pax.js';

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
  /** The stored name (pax `path`, GNU long name or ustar prefix/name), not yet normalized. */
  name: string;
  /** Link target for hardlinks and symlinks, as stored. */
  linkname: string;
  type: TarEntryType;
  /** The raw typeflag character (`'0'`, `'S'`, …). */
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
  /**
   * Data bytes the member stores: the pax `size` record, else the header's size field. For a pax
   * sparse member these are the stored runs (and a 1.0 map), while entry.size is the real size.
   */
  stored: number;
}

/** The entry a header describes, with the pending records applied; sizes and names are checked. */
export function buildEntry(
  blk: Buffer,
  typeflag: string,
  rawSize: number,
  p: Pending,
  maxPathLength: number,
  ctx: HeaderContext,
): HeaderEntry {
  const name = p.pax.get('GNU.sparse.name') ?? p.pax.get('path') ?? p.longName ?? headerName(blk);
  const linkname = p.pax.get('linkpath') ?? p.longLink ?? cString(blk, 157, 100);
  for (const [what, value] of [
    ['name', name],
    ['link target', linkname],
  ] as const) {
    if (value.length > maxPathLength) {
      throw new LimitExceededError(
        'maxPathLength',
        value.length,
        `tar member at byte ${ctx.headerOffset} has a ${what} of ${value.length} characters, more than maxPathLength (${maxPathLength})`,
      );
    }
  }
  // The one reading of the pax `size` record: the parser takes the stored size from here too.
  const paxSize = p.pax.get('size');
  const stored = paxSize === undefined ? rawSize : parseDecimal(paxSize, 'pax size', ctx);
  let size = stored;
  const sparse =
    typeflag === 'S' ||
    p.pax.has('GNU.sparse.major') ||
    p.pax.has('GNU.sparse.map') ||
    p.sparseOffsets.length > 0;
  if (sparse && typeflag !== 'S') {
    const real = p.pax.get('GNU.sparse.realsize') ?? p.pax.get('GNU.sparse.size');
    if (real === undefined) throw ctx.corrupt('pax sparse member without GNU.sparse.realsize/size');
    size = parseDecimal(real, 'sparse real size', ctx);
  }
  if (typeflag === 'S') size = parseNumeric(blk, 483, 12, 'sparse real size', ctx);
  const mode = parseNumericLenient(blk, 100, 8);
  return { entry: { name, linkname, type: entryType(typeflag), typeflag, size, mode, sparse }, stored };
}

/** Member data bytes that follow the header; header-only types carry none whatever `size` says (as Go's archive/tar). */
export function entryDataSize(typeflag: string, size: number): number {
  return '123456'.includes(typeflag) ? 0 : size;
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
