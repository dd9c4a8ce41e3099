/**
 * Tar members built byte by byte, the way an attacker writes them: names as raw bytes (invalid
 * UTF-8 included), metadata records in any order and number, old-GNU and star headers, archives
 * without their end-of-archive marker. No packer normalizes them, which is the point. Shared by the
 * tests that hold the tar reader to Go's archive/tar (src/analyzer/tar-go-*.test.ts and
 * test/reliability/hostile/go-tar-oracle.test.ts).
 */
import { type AnalyzerLimits, DEFAULT_LIMITS } from '../limits.js';
import { type TarEntry, TarParser } from '../tar.js';

/** A name or value: a string is written as UTF-8, a Buffer as its bytes. */
export type Bytes = string | Buffer;

const toBytes = (b: Bytes): Buffer => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b);

/** Where the suites put the backdoored library. */
export const LIB = 'usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';

/** Bytes that stand in for the backdoored library (a test IOC set names their sha256). */
export const EVIL = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(3000, 'evil payload ')]);

/** A clean library of the same size, so a size prefilter cannot tell the two apart. */
export const CLEAN = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(3000, 'clean bytes. ')]);

export interface HeaderSpec {
  name: Bytes;
  size?: number;
  typeflag?: string;
  linkname?: Bytes;
  /** 'ustar' (magic `ustar\0` `00`), 'star' (ustar plus the `tar\0` trailer), 'gnu' (`ustar  \0`), 'v7'. */
  format?: 'ustar' | 'star' | 'gnu' | 'v7';
  /** Bytes from offset 345: the ustar prefix, or for 'gnu' what sits in the atime/ctime area. */
  at345?: Bytes;
  /** Raw bytes for the 12-byte size field (e.g. a base-256 number), instead of octal `size`. */
  sizeField?: Buffer;
}

const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;

/** One 512-byte header with a correct checksum. */
export function header(h: HeaderSpec): Buffer {
  const b = Buffer.alloc(512);
  toBytes(h.name).copy(b, 0, 0, 100);
  b.write(octal(0o644, 8), 100, 'latin1');
  b.write(octal(0, 8), 108, 'latin1');
  b.write(octal(0, 8), 116, 'latin1');
  if (h.sizeField) h.sizeField.copy(b, 124, 0, 12);
  else b.write(octal(h.size ?? 0, 12), 124, 'latin1');
  b.write(octal(1_709_251_200, 12), 136, 'latin1');
  b.write(h.typeflag ?? '0', 156, 'latin1');
  if (h.linkname !== undefined) toBytes(h.linkname).copy(b, 157, 0, 100);
  const format = h.format ?? 'ustar';
  if (format === 'ustar' || format === 'star') b.write('ustar\x0000', 257, 'latin1');
  else if (format === 'gnu') b.write('ustar  \0', 257, 'latin1');
  if (h.at345 !== undefined) toBytes(h.at345).copy(b, 345, 0, 155);
  if (format === 'star') b.write('tar\0', 508, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** `data` followed by the zeros that pad it to a whole block. */
export function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** A header with `data` as its content, its size field set to the data's length. */
export function member(h: HeaderSpec, data: Bytes = ''): Buffer {
  const body = toBytes(data);
  return Buffer.concat([header({ size: body.length, ...h }), padded(body)]);
}

/** A regular file `name` holding `data`. */
export function file(name: Bytes, data: Bytes = ''): Buffer {
  return member({ name }, data);
}

/** A pax header (`x`, or `g` for a global one) holding `records` in order; keys may repeat. */
export function pax(records: Array<[string, Bytes]> | Record<string, Bytes>, typeflag = 'x'): Buffer {
  const list = Array.isArray(records) ? records : Object.entries(records);
  const parts = list.map(([k, v]) => {
    const tail = Buffer.concat([Buffer.from(` ${k}=`), toBytes(v), Buffer.from('\n')]);
    let len = tail.length + 1;
    while (String(len).length + tail.length !== len) len = String(len).length + tail.length;
    return Buffer.concat([Buffer.from(String(len)), tail]);
  });
  return member({ name: typeflag === 'g' ? 'GlobalHead.0' : 'PaxHeaders/x', typeflag }, Buffer.concat(parts));
}

/** A GNU long name (`L`) or long link target (`K`) record, NUL-terminated as GNU tar writes it. */
export function gnuLong(name: Bytes, typeflag: 'L' | 'K' = 'L'): Buffer {
  return member(
    { name: '././@LongLink', typeflag, format: 'gnu' },
    Buffer.concat([toBytes(name), Buffer.alloc(1)]),
  );
}

/** The members followed by the two zero blocks that end an archive. */
export function tarOf(...members: Buffer[]): Buffer {
  return Buffer.concat([...members, Buffer.alloc(1024)]);
}

/**
 * A NUL-typeflag (v7) member named `name` whose size covers `inner`. Go reads it as a directory, with no
 * data, when its final name ends in '/', and then reads `inner`'s members; else as a regular file.
 */
export function nulMember(name: string, inner: Buffer, h: Partial<HeaderSpec> = {}): Buffer {
  return Buffer.concat([header({ name, typeflag: '\0', size: inner.length, ...h }), padded(inner)]);
}

const BIG_COMMENT = 'x'.repeat(600 * 1024);

/**
 * One-layer images in which Go's archive/tar (Docker, containerd, Podman) writes EVIL at LIB, while a
 * reader that merges tar metadata otherwise sees another name: the exploratory tester's t-cases and the
 * analyzer review's r-cases. The verdict tests and the umoci oracle test both run every one.
 */
export const HIDDEN_BACKDOOR_LAYERS: Readonly<Record<string, Buffer>> = {
  't02 empty pax path': tarOf(pax({ path: '' }), file(LIB, EVIL)),
  't03 pax path, then GNU long name': tarOf(
    pax({ path: 'opt/decoy.bin' }),
    gnuLong(LIB),
    file('opt/short', EVIL),
  ),
  't03b GNU long name, then pax path': tarOf(
    gnuLong(LIB),
    pax({ path: 'opt/decoy.bin' }),
    file('opt/short', EVIL),
  ),
  't04 two x headers': tarOf(pax({ path: 'opt/decoy.bin' }), pax({ mtime: '1' }), file(LIB, EVIL)),
  't05 GNU.sparse.name without sparse records': tarOf(
    pax({ 'GNU.sparse.name': 'opt/decoy.bin' }),
    file(LIB, EVIL),
  ),
  't08 no end-of-archive marker': file(LIB, EVIL),
  't09 empty pax size': tarOf(pax({ size: '' }), file(LIB, EVIL)),
  "r1 NUL member named 'opt/x/' (a directory) over the library": tarOf(nulMember('opt/x/', file(LIB, EVIL))),
  "r3 NUL member, pax path 'opt/y/'": tarOf(pax({ path: 'opt/y/' }), nulMember('opt/plain', file(LIB, EVIL))),
  'r4 unknown GNU sparse version, offsets that are not numbers': tarOf(
    pax([
      ['GNU.sparse.major', '9'],
      ['GNU.sparse.minor', '9'],
      ['GNU.sparse.offset', 'x'],
      ['GNU.sparse.numbytes', 'y'],
    ]),
    file(LIB, EVIL),
  ),
  'r6 two 600 KiB pax headers': tarOf(
    pax({ comment: BIG_COMMENT }),
    pax({ comment: BIG_COMMENT }),
    file(LIB, EVIL),
  ),
};

/**
 * One-layer images with a clean member that a reader merging tar metadata otherwise would take for LIB,
 * which Go's archive/tar writes elsewhere: as an upper layer, it must not hide a base layer's backdoor.
 * The verdict tests and the umoci oracle test both run every one.
 */
export const WRITTEN_ELSEWHERE_LAYERS: Readonly<Record<string, Buffer>> = {
  't10 GNU long name, then pax path': tarOf(
    gnuLong('opt/unrelated.bin'),
    pax({ path: LIB }),
    file('x', CLEAN),
  ),
  't10b pax path in a replaced x': tarOf(
    pax({ path: LIB }),
    pax({ mtime: '1' }),
    file('opt/unrelated.bin', CLEAN),
  ),
  't10c GNU.sparse.name, not sparse': tarOf(
    pax({ 'GNU.sparse.name': LIB }),
    file('opt/unrelated.bin', CLEAN),
  ),
};

/** One member as the tar reader hands it over, with its content. */
export interface ReadEntry {
  entry: TarEntry;
  data: Buffer;
}

/** Every member TarParser reads from `tar` fed in `chunk`-byte pieces; throws what the parser throws. */
export function readEntries(
  tar: Buffer,
  chunk = tar.length,
  limits: AnalyzerLimits = DEFAULT_LIMITS,
): ReadEntry[] {
  const seen: ReadEntry[] = [];
  const parser = new TarParser(
    {
      onEntry(entry) {
        const parts: Buffer[] = [];
        return {
          write: (c) => parts.push(Buffer.from(c)),
          end: () => seen.push({ entry, data: Buffer.concat(parts) }),
        };
      },
    },
    limits,
  );
  for (let i = 0; i < tar.length; i += Math.max(1, chunk))
    parser.push(tar.subarray(i, i + Math.max(1, chunk)));
  parser.end();
  return seen;
}
