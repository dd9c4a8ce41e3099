/**
 * A byte-level ustar writer for hostile layers: names no well-behaved packer would write (NUL, `..`,
 * absolute, 10 000 characters through PAX), wrong checksums, and 100 000 entries in well under a
 * second. Only what the hostile suites need; scripts/lib/image-builder.ts is for honest images.
 */

export interface RawEntry {
  /** Bytes of the name field as given (may hold NUL); longer than 100 bytes needs `pax`. */
  name: string;
  body?: Buffer;
  /** Tar typeflag: '0' file, '5' dir, '2' symlink, 'x' PAX extended header. Default '0'. */
  type?: string;
  /** PAX records written in a preceding 'x' header (e.g. { path: 'a'.repeat(10_000) }). */
  pax?: Record<string, string>;
  /** Writes this checksum instead of the right one. */
  badChecksum?: boolean;
  /** Overwrites the size field with these characters (e.g. not octal). */
  rawSize?: string;
}

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value.slice(0, length), offset, length, 'latin1');
}

function octal(n: number, length: number): string {
  return `${n.toString(8).padStart(length - 1, '0')}\0`;
}

/** One 512-byte ustar header block. */
export function header(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  field(h, 0, 100, e.name);
  field(h, 100, 8, octal(0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, e.rawSize ?? octal(size, 12));
  field(h, 136, 12, octal(1_709_251_200, 12));
  field(h, 156, 1, e.type ?? '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'root');
  field(h, 297, 32, 'root');
  // The checksum is computed with its own field as eight spaces (POSIX ustar).
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, octal(e.badChecksum ? sum + 1 : sum, 7));
  h[155] = 0x20;
  return h;
}

function padded(body: Buffer): Buffer[] {
  const rest = body.length % 512;
  return rest === 0 ? [body] : [body, Buffer.alloc(512 - rest)];
}

/** A PAX record: "<len> key=value\n" where len counts the whole record, itself included. */
function paxRecord(key: string, value: string): string {
  const tail = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(tail);
  while (Buffer.byteLength(`${len}${tail}`) !== len) len = Buffer.byteLength(`${len}${tail}`);
  return `${len}${tail}`;
}

/** Serializes entries to a tar archive, ending with the two zero blocks. */
export function rawTar(entries: Iterable<RawEntry>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const records = Buffer.from(
        Object.entries(e.pax)
          .map(([k, v]) => paxRecord(k, v))
          .join(''),
      );
      parts.push(header({ name: 'PaxHeader', type: 'x' }, records.length), ...padded(records));
    }
    const body = e.body ?? Buffer.alloc(0);
    parts.push(header(e, body.length), ...padded(body));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
