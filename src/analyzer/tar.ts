/**
 * A push-style streaming tar reader: ustar, POSIX pax (path, linkpath, size), GNU long names and
 * links, old-GNU and pax sparse files, v7 headers; every header checksum verified. Where tar
 * readers disagree (how records combine, which names and sizes win, where an archive may end), it
 * reads as Go's archive/tar does: Docker, containerd and Podman apply layers with it, and a layer
 * must name to hubcrawl the files a runtime creates from it.
 *
 * Written here rather than taken from tar-stream because the analyzer must (1) bound every piece
 * of metadata it buffers (pax records, GNU long names, sparse maps) before reading it, (2) hand
 * entry data to synchronous hooks as zero-copy views, with no per-entry stream objects, and (3)
 * turn every malformation into a typed error at a known offset. Member data that no hook wants is
 * skipped without being looked at.
 *
 * This file is the state machine: it bounds what is buffered and counted before it hands bytes to
 * the decoding in tar-fields.ts (header fields), tar-pax.ts (pax and GNU long-name records),
 * tar-entry.ts (entry types, header-to-entry decoding) and tar-sparse.ts (sparse maps and holes).
 */
import { CorruptInputError, LimitExceededError } from '../core/errors.js';
import type { AnalyzerLimits } from './limits.js';
import {
  buildEntry,
  entryDataSize,
  isHeaderOnly,
  type TarEntry,
  type TarEntrySink,
  type TarVisitor,
} from './tar-entry.js';
import { BLOCK, isZeroBlock, parseNumeric, readNumeric, verifyChecksum } from './tar-fields.js';
import { applyMeta, freshPending, isMetaTypeflag, type Pending } from './tar-pax.js';
import {
  readSparseEntries,
  SparseExpander,
  type SparseSegment,
  SparseV1MapReader,
  sparseFromPax,
} from './tar-sparse.js';

export type { TarEntry, TarEntrySink, TarEntryType, TarVisitor } from './tar-entry.js';
export type { SparseSegment } from './tar-sparse.js';

type Limits = Pick<
  AnalyzerLimits,
  'maxHeaderBytes' | 'maxEntries' | 'maxPathLength' | 'maxUncompressedBytes'
>;

/** `after-zero`: one zero block read; the next block says whether the archive ended cleanly. */
type State = 'header' | 'data' | 'sparse-ext' | 'after-zero' | 'end';

/** What to do with the current member's data bytes. */
type Target =
  | { kind: 'skip' }
  | { kind: 'sink'; sink: TarEntrySink }
  | { kind: 'meta'; typeflag: string; chunks: Buffer[]; bytes: number }
  | {
      kind: 'sparse-v1-map';
      reader: SparseV1MapReader;
      bytes: number;
      size: number;
      sink: TarEntrySink | null;
    };

/** Reads one uncompressed tar stream pushed in chunks of any size, calling the visitor per member. */
export class TarParser {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private remaining = 0;
  private padding = 0;
  private target: Target = { kind: 'skip' };
  private pending: Pending = freshPending();
  /** Old-GNU sparse: the entry waiting for its extension blocks, and the map so far. */
  private sparseEntry: { entry: TarEntry; map: SparseSegment[]; stored: number } | null = null;
  /** @internal Offset of the current header in the uncompressed stream, for error messages. */
  headerOffset = 0;
  /** Uncompressed bytes consumed so far. */
  position = 0;
  /** Bytes of sparse holes handed to consumers so far (see chargeHoles). */
  private holeBytes = 0;
  /** Archive members seen (metadata records not counted). */
  entryCount = 0;

  constructor(
    private readonly visitor: TarVisitor,
    private readonly limits: Limits,
  ) {}

  /**
   * True once the end-of-archive marker (two zero blocks) was read; anything after it is ignored. A lone
   * zero block is not the end yet: the block after it decides (onBlockAfterZero).
   */
  get finished(): boolean {
    return this.state === 'end';
  }

  /** Feeds the next bytes of the uncompressed archive. */
  push(input: Uint8Array): void {
    const chunk = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.state === 'end') {
        this.position += len - off;
        return;
      }
      if (this.state === 'data') {
        off += this.consumeData(chunk, off);
        continue;
      }
      // header, sparse-ext, after-zero: each needs one whole block.
      let blk: Buffer;
      if (this.blockFill === 0 && len - off >= BLOCK) {
        blk = chunk.subarray(off, off + BLOCK);
        off += BLOCK;
        this.position += BLOCK;
      } else {
        const n = Math.min(BLOCK - this.blockFill, len - off);
        chunk.copy(this.block, this.blockFill, off, off + n);
        this.blockFill += n;
        off += n;
        this.position += n;
        if (this.blockFill < BLOCK) return;
        blk = this.block;
        this.blockFill = 0;
      }
      this.headerOffset = this.position - BLOCK;
      if (this.state === 'header') this.onHeader(blk);
      else if (this.state === 'after-zero') this.onBlockAfterZero(blk);
      else this.onSparseExtension(blk);
    }
  }

  /**
   * Declares the end of input; throws when the archive stopped inside a header, a member's data or an
   * old-GNU sparse map. The end-of-archive marker itself is optional: Go's archive/tar, which
   * Docker, containerd and Podman apply layers with, takes the end of the stream at a header
   * boundary (after a member, its padding, or one zero block) as the end of the archive, and so does
   * the end of the stream inside a member's padding, once all of its data was read.
   */
  end(): void {
    if (this.state === 'data' && this.remaining === 0) {
      this.padding = 0;
      this.memberDone(); // ends the member's sink, or applies its metadata, as the padding would have
    }
    if ((this.state === 'header' || this.state === 'after-zero') && this.blockFill === 0) this.state = 'end';
    if (this.state === 'end') return;
    const where =
      this.state === 'data' || this.state === 'sparse-ext'
        ? `inside a member (${this.remaining + this.padding} bytes missing)`
        : this.state === 'after-zero'
          ? `in the block after a lone zero block (${this.blockFill} of 512 bytes)`
          : `inside a header (${this.blockFill} of 512 bytes)`;
    throw new CorruptInputError(`tar stream is truncated: it ended at byte ${this.position} ${where}`);
  }

  private consumeData(chunk: Buffer, off: number): number {
    const avail = chunk.length - off;
    if (this.remaining > 0) {
      let n = Math.min(this.remaining, avail);
      const t = this.target;
      // A GNU 1.0 sparse map fills whole blocks: look at it one block at a time so the file's
      // data that follows never lands in the map buffer.
      if (t.kind === 'sparse-v1-map') n = Math.min(n, BLOCK - (t.bytes % BLOCK));
      const view = chunk.subarray(off, off + n);
      this.remaining -= n;
      this.position += n;
      this.deliver(view);
      if (this.remaining === 0 && this.padding === 0) this.memberDone();
      return n;
    }
    const n = Math.min(this.padding, avail);
    this.padding -= n;
    this.position += n;
    if (this.padding === 0) this.memberDone();
    return n;
  }

  private deliver(view: Buffer): void {
    const t = this.target;
    if (t.kind === 'sink') t.sink.write(view);
    else if (t.kind === 'meta') {
      t.chunks.push(Buffer.from(view));
      t.bytes += view.length;
    } else if (t.kind === 'sparse-v1-map') {
      t.reader.append(view);
      t.bytes += view.length;
      this.trySparseV1Map(t);
    }
  }

  private startData(size: number, target: Target): void {
    this.target = target;
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.memberDone();
    else this.state = 'data';
  }

  private memberDone(): void {
    const t = this.target;
    this.target = { kind: 'skip' };
    this.state = 'header';
    if (t.kind === 'sink') t.sink.end();
    else if (t.kind === 'meta') applyMeta(this.pending, t.typeflag, Buffer.concat(t.chunks, t.bytes), this);
    else if (t.kind === 'sparse-v1-map') {
      throw this.corrupt('pax sparse map (GNU 1.0) runs past the end of its member');
    }
  }

  /** @internal A typed error pointing at the current header. */
  corrupt(what: string): CorruptInputError {
    return new CorruptInputError(`corrupt tar header at byte ${this.headerOffset}: ${what}`);
  }

  private onHeader(blk: Buffer): void {
    if (blk[0] === 0 && isZeroBlock(blk)) {
      this.state = 'after-zero';
      return;
    }
    verifyChecksum(blk, this);
    // As stored: a v7 NUL stays NUL until the member's name is final (buildEntry), since Go reads a
    // NUL member whose name ends in `/` as a directory, which has no data.
    const typeflag = String.fromCharCode(blk[156] ?? 0);
    const rawSize = this.sizeField(blk, typeflag);
    const p = this.pending;
    if (isMetaTypeflag(typeflag)) {
      // Each record on its own, as Go bounds each special file (readSpecialFile, 1 MiB). What is
      // held stays bounded too: a later `x`, `L` or `K` replaces the earlier one of its kind, so at
      // most one of each waits for the member.
      if (rawSize > this.limits.maxHeaderBytes) {
        throw new LimitExceededError(
          'maxHeaderBytes',
          rawSize,
          `tar metadata record (type '${typeflag}') at byte ${this.headerOffset} is ${rawSize} bytes, more than maxHeaderBytes (${this.limits.maxHeaderBytes})`,
        );
      }
      this.startData(rawSize, { kind: 'meta', typeflag, chunks: [], bytes: 0 });
      return;
    }
    this.entryCount++;
    if (this.entryCount > this.limits.maxEntries) {
      throw new LimitExceededError(
        'maxEntries',
        this.entryCount,
        `layer has more than maxEntries (${this.limits.maxEntries}) tar entries`,
      );
    }
    const built = buildEntry(blk, typeflag, rawSize, p, this.limits.maxPathLength, this);
    const { entry, stored, paxSparse } = built;
    this.pending = freshPending();
    if (built.typeflag === 'S') {
      // The pax `size`, when there is one, is the stored length here too (Go: mergePAX, then
      // handleRegularFile, before readOldGNUSparseMap sets the real size).
      this.startOldGnuSparse(blk, entry, stored);
      return;
    }
    if (!entry.sparse) {
      const sink = this.visitor.onEntry(entry);
      this.startData(
        entryDataSize(built.typeflag, stored),
        sink === null ? { kind: 'skip' } : { kind: 'sink', sink },
      );
      return;
    }
    // pax sparse: `stored` (pax or header size) counts the stored bytes; entry.size is the real size.
    if (paxSparse === '1.0') {
      const sink = this.visitor.onEntry(entry);
      const reader = new SparseV1MapReader(this);
      this.startData(stored, { kind: 'sparse-v1-map', reader, bytes: 0, size: entry.size, sink });
      return;
    }
    this.startSparseData(entry, sparseFromPax(p.pax, this), stored);
  }

  /**
   * The header's size field. Go reads no data for header-only types, so there a negative or huge
   * size is no error (a field that is not a number still is, as it is to Go).
   */
  private sizeField(blk: Buffer, typeflag: string): number {
    const v = readNumeric(blk, 124, 12);
    if ((v === 'negative' || v === 'too-large') && isHeaderOnly(typeflag)) return 0;
    return parseNumeric(blk, 124, 12, 'size', this);
  }

  private startOldGnuSparse(blk: Buffer, entry: TarEntry, stored: number): void {
    const map: SparseSegment[] = [];
    readSparseEntries(blk, 386, 4, map, this);
    this.sparseEntry = { entry, map, stored };
    if (blk[482] !== 0) {
      this.state = 'sparse-ext';
      return;
    }
    this.finishOldGnuSparse();
  }

  /**
   * Two zero blocks end an archive. After a lone one, GNU tar stops (with a warning) and never reads the
   * members that follow, while Go's archive/tar, which Docker, containerd and Podman read layers with,
   * refuses the archive. Reading like GNU tar would record a layer as complete while members sit in it
   * unseen; no runtime applies such a layer, so it is corrupt input, said plainly.
   */
  private onBlockAfterZero(blk: Buffer): void {
    if (isZeroBlock(blk)) {
      this.state = 'end';
      return;
    }
    throw new CorruptInputError(
      `corrupt tar archive: a lone zero block at byte ${this.headerOffset - BLOCK} is followed by more data; GNU tar stops there and Go's archive/tar (Docker, containerd) refuses the layer`,
    );
  }

  private onSparseExtension(blk: Buffer): void {
    const s = this.sparseEntry;
    if (s === null) throw this.corrupt('unexpected sparse extension block');
    // Checked before the block is read: the map with this block's 21 entries of 24 bytes.
    this.boundSparseMap((s.map.length + 21) * 24, `GNU sparse map continued at byte ${this.headerOffset}`);
    readSparseEntries(blk, 0, 21, s.map, this);
    if (blk[504] === 0) {
      this.state = 'header';
      this.finishOldGnuSparse();
    }
  }

  private finishOldGnuSparse(): void {
    const s = this.sparseEntry;
    this.sparseEntry = null;
    if (s === null) return;
    this.startSparseData(s.entry, s.map, s.stored);
  }

  /**
   * Holes a sparse member expands into are bytes a consumer reads although no decompressor produced
   * them: they count against maxUncompressedBytes, or a few-KB member declaring a huge real size keeps
   * the hasher busy for hours.
   */
  private chargeHoles(realSize: number, stored: number): void {
    this.holeBytes += Math.max(0, realSize - stored);
    if (this.position + this.holeBytes > this.limits.maxUncompressedBytes) {
      throw new LimitExceededError(
        'maxUncompressedBytes',
        this.position + this.holeBytes,
        `sparse member at byte ${this.headerOffset} would expand the layer past maxUncompressedBytes (${this.limits.maxUncompressedBytes})`,
      );
    }
  }

  private startSparseData(entry: TarEntry, map: SparseSegment[], stored: number): void {
    const sink = this.visitor.onEntry(entry);
    if (sink !== null) this.chargeHoles(entry.size, stored);
    const target: Target =
      sink === null
        ? { kind: 'skip' }
        : { kind: 'sink', sink: new SparseExpander(map, entry.size, stored, sink, this) };
    this.startData(stored, target);
  }

  /** A sparse map is metadata held before the data it describes: `bytes` of it count against maxHeaderBytes. */
  private boundSparseMap(bytes: number, what: string): void {
    if (bytes <= this.limits.maxHeaderBytes) return;
    throw new LimitExceededError(
      'maxHeaderBytes',
      bytes,
      `${what} reaches ${bytes} bytes, more than maxHeaderBytes (${this.limits.maxHeaderBytes})`,
    );
  }

  /** GNU sparse 1.0 keeps its map as decimal lines at the start of the data, padded to a block. */
  private trySparseV1Map(t: Extract<Target, { kind: 'sparse-v1-map' }>): void {
    this.boundSparseMap(t.bytes, `GNU sparse 1.0 map of the member at byte ${this.headerOffset}`);
    if (t.bytes % BLOCK !== 0) return;
    const map = t.reader.take();
    if (map === null) return;
    // What is left of the member after the map is the stored data.
    if (t.sink !== null) this.chargeHoles(t.size, this.remaining);
    this.target =
      t.sink === null
        ? { kind: 'skip' }
        : { kind: 'sink', sink: new SparseExpander(map, t.size, this.remaining, t.sink, this) };
  }
}
