/**
 * Builds real layer bytes for the analyzer tests: trees written to a temp dir and archived by GNU
 * tar (gnu, pax, ustar, sparse), tars packed by tar-stream (device files, odd headers), and the
 * gzip/zstd CLIs. Oracles (sha256sum, md5sum) come from outside our code.
 */
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tarStream from 'tar-stream';
import type { CompiledRules } from '../iocs/compile.js';
import type { CompiledSignature } from '../signatures.js';

export const LIBLZMA = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
export const LONG_DIR = `deep/${'d'.repeat(120)}`;
export const LONG_FILE = `${LONG_DIR}/${'f'.repeat(150)}`;

export const DPKG_STATUS = `Package: liblzma5
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: same
Source: xz-utils
Version: 5.6.1-1
Description: XZ-format compression library

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

`;

/** A small rootfs with every kind of entry the analyzer cares about (ustar can hold neither long names nor sparse files); returns its directory. */
export function buildTree(options: { longNames?: boolean; sparse?: boolean } = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'hubcrawl-layer-'));
  const put = (rel: string, data: string | Buffer) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), data);
  };
  put('var/lib/dpkg/status', DPKG_STATUS);
  put('var/lib/dpkg/info/liblzma5:amd64.md5sums', `d41d8cd98f00b204e9800998ecf8427e  ${LIBLZMA.slice(1)}\n`);
  put('usr/lib/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n');
  put('etc/debian_version', '12.5\n');
  symlinkSync('../usr/lib/os-release', join(root, 'etc/os-release'));
  // Deterministic "binary" content with a known marker for signature tests.
  const lib = Buffer.alloc(300_000);
  for (let i = 0; i < lib.length; i++) lib[i] = (i * 7919) % 251;
  Buffer.from('7f454c46', 'hex').copy(lib, 0);
  Buffer.from('f30f1efa554889f54c89ce5389fb81e7', 'hex').copy(lib, 123_457);
  put(LIBLZMA.slice(1), lib);
  linkSync(join(root, LIBLZMA.slice(1)), join(root, 'usr/lib/liblzma-hardlink.so'));
  put('etc/.wh.removed.conf', '');
  put('opt/app/.wh..wh..opq', '');
  if (options.longNames !== false) put(LONG_FILE, 'long name content\n');
  put('usr/share/doc/readme', 'not a candidate\n');
  if (options.sparse === false) return root;
  execFileSync('truncate', ['-s', '3M', join(root, 'usr/lib/sparse.so')]);
  execFileSync('dd', [`of=${join(root, 'usr/lib/sparse.so')}`, 'bs=1', 'seek=1000000', 'conv=notrunc'], {
    input: 'sparse-data',
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  return root;
}

/** `tar -C root -c .` with the given format and extra flags. */
export function tarCli(root: string, format: 'gnu' | 'pax' | 'ustar', extra: string[] = []): Buffer {
  return execFileSync('tar', [`--format=${format}`, ...extra, '-C', root, '-cf', '-', '.'], {
    maxBuffer: 1 << 30,
  });
}

export function gzipCli(data: Buffer): Buffer {
  return execFileSync('gzip', ['-c', '-6'], { input: data, maxBuffer: 1 << 30 });
}

export function zstdCli(data: Buffer, args: string[] = ['-3']): Buffer {
  return execFileSync('zstd', ['-c', '-q', ...args], { input: data, maxBuffer: 1 << 30 });
}

/** sha256sum and md5sum of a file on disk, from the coreutils binaries. */
export function coreutilsHashes(path: string): { sha256: string; md5: string } {
  const first = (cmd: string) => execFileSync(cmd, [path]).toString().split(' ')[0] as string;
  return { sha256: first('sha256sum'), md5: first('md5sum') };
}

/** Yields `data` in pieces of `size` bytes (Infinity: one piece), copying so no view aliases another. */
export async function* chunked(
  data: Uint8Array,
  size = Number.POSITIVE_INFINITY,
): AsyncGenerator<Uint8Array> {
  if (size === Number.POSITIVE_INFINITY) {
    yield Uint8Array.from(data);
    return;
  }
  for (let i = 0; i < data.length; i += size) yield Uint8Array.from(data.subarray(i, i + size));
}

export interface PackEntry {
  header: tarStream.Headers;
  body?: string | Buffer;
}

/** A tar built by tar-stream's packer (the other implementation, for entry types GNU tar needs root or devices for). */
export async function packTar(entries: PackEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const out: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: Buffer) => out.push(c));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(e.header, e.body ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(out);
}

/** Rules that pick candidates by predicate and scan with the given signatures. */
export function testRules(
  isCandidate: (path: string, size: number) => boolean,
  signatures: CompiledSignature[] = [],
  fingerprint = 'test-rules',
): CompiledRules {
  return {
    fingerprint,
    coveredBy: [fingerprint],
    definition: JSON.stringify({ test: fingerprint }),
    coveredByDefinition: () => false,
    gapsOf: () => ['unknown'],
    hasSignatures: signatures.length > 0,
    isCandidate,
    isWatchedPath: () => false,
    signatureRulesFor: (path) => (path.includes('liblzma') ? signatures : []),
  };
}

/** One raw 512-byte ustar header with a correct checksum, for hand-made edge cases. */
export function rawHeader(h: {
  name: string;
  size: number;
  typeflag?: string;
  linkname?: string;
  prefix?: string;
}): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${h.size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(h.typeflag ?? '0', 156, 'latin1');
  if (h.linkname) b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  if (h.prefix) b.write(h.prefix, 345, 155, 'utf8');
  return withChecksum(b);
}

/** Recomputes the checksum field of a header block (after a test changed it on purpose). */
export function withChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** Header + data padded to a block boundary. */
export function rawMember(header: Buffer, body: Buffer | string = ''): Buffer {
  const data = Buffer.from(body);
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([header, data, Buffer.alloc(pad)]);
}

/** A pax extended header member carrying `records`. */
export function paxMember(records: Record<string, string>, typeflag = 'x'): Buffer {
  let text = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 1;
    while (`${len}${body}`.length !== len) len++;
    text += `${len}${body}`;
  }
  return rawMember(rawHeader({ name: 'PaxHeader', size: Buffer.byteLength(text), typeflag }), text);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);
