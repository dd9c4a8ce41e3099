/**
 * The demo's (and the end-to-end tests') image set: small generated Debian-like images with XZ
 * backdoor indicators planted in known places, so the expected findings are known exactly.
 */
import { readFileSync } from 'node:fs';
import { debianBaseEntries } from './lib/debian-fixtures.js';
import {
  type BuiltBlob,
  type BuiltImage,
  type BuiltIndex,
  buildImage,
  buildIndex,
  buildLayer,
} from './lib/image-builder.js';

const IOC_FILE = new URL('../iocs/xz-cve-2024-3094.json', import.meta.url);

/** The on-disk detect.sh prologue signature of the built-in set, as bytes (never retyped: read from the set). */
export function detectShPrologue(): Buffer {
  const set = JSON.parse(readFileSync(IOC_FILE, 'utf8')) as { rules: Array<{ id: string; hex?: string }> };
  const hex = set.rules.find((r) => r.id === 'sig-detect-sh-prologue')?.hex;
  if (!hex) throw new Error('the built-in IOC set has no sig-detect-sh-prologue rule');
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

/** An ELF-headed stand-in library that carries the signature at an odd offset (not a working library). */
export function signatureBearingElf(): Buffer {
  const header = Buffer.from('7f454c4602010100', 'hex');
  return Buffer.concat([header, Buffer.alloc(4000, 0x90), detectShPrologue(), Buffer.alloc(777, 0xcc)]);
}

/** md5sums line of the backdoored liblzma.so.5.6.1 from the reference (the real package's md5sums). */
export const BACKDOORED_MD5SUMS_LINE =
  '53d82bb511b71a5d4794cf2d8a2072c1  usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';

export interface DemoImage {
  repository: string;
  tag: string;
  image: BuiltImage | BuiltIndex;
  /** What the demo expects hubcrawl to say about it. */
  expect: string;
}

/** Builds the demo set. Several images share one base layer blob byte for byte. */
export async function buildDemoImages(): Promise<DemoImage[]> {
  const base: BuiltBlob = await buildLayer(debianBaseEntries({ codename: 'bookworm' }), 'gzip');
  const app = (name: string) =>
    buildLayer(
      [{ type: 'file', path: `opt/${name}/app.sh`, content: `#!/bin/sh\necho ${name}\n`, mode: 0o755 }],
      'gzip',
    );
  const sigLayer = await buildLayer(
    [{ type: 'file', path: 'usr/lib/x86_64-linux-gnu/liblzma.so.5.6.0', content: signatureBearingElf() }],
    'gzip',
  );
  const sidBase = await buildLayer(
    [
      ...debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1' }).filter(
        (e) => !('path' in e && e.path.endsWith('liblzma5:amd64.md5sums')),
      ),
      {
        type: 'file',
        path: 'var/lib/dpkg/info/liblzma5:amd64.md5sums',
        content: `${BACKDOORED_MD5SUMS_LINE}\n`,
      },
    ],
    'gzip',
  );
  const armBase = await buildLayer(
    debianBaseEntries({ codename: 'sid', liblzmaVersion: '5.6.1-1', arch: 'arm64' }),
    'gzip',
  );

  const clean = await buildImage({ layers: [base] });
  const appOne = await buildImage({ layers: [base, await app('one')] });
  const appTwo = await buildImage({ layers: [base, await app('two')], format: 'oci' });
  const sidXz = await buildImage({ layers: [sidBase] });
  const sigLib = await buildImage({ layers: [base, sigLayer] });
  const removed = await buildImage({
    layers: [
      base,
      sigLayer,
      { entries: [{ type: 'whiteout', path: 'usr/lib/x86_64-linux-gnu/liblzma.so.5.6.0' }] },
    ],
  });
  const multi = buildIndex({
    images: [
      sidXz,
      await buildImage({
        layers: [armBase],
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      }),
    ],
    format: 'oci',
    withAttestation: true,
  });
  return [
    { repository: 'demo/debian-clean', tag: '12', image: clean, expect: 'clean' },
    { repository: 'demo/app-one', tag: '1.0', image: appOne, expect: 'clean (shares the base layer)' },
    { repository: 'demo/app-two', tag: '1.0', image: appTwo, expect: 'clean (shares the base layer)' },
    {
      repository: 'demo/sid-xz',
      tag: '20240311',
      image: sidXz,
      expect: 'affected: liblzma5 5.6.1-1 and its md5sums line',
    },
    {
      repository: 'demo/sig-lib',
      tag: 'latest',
      image: sigLib,
      expect: 'affected: byte signature in liblzma.so.5.6.0',
    },
    {
      repository: 'demo/removed',
      tag: 'latest',
      image: removed,
      expect: 'signature only in a lower layer (in_final_fs=false)',
    },
    {
      repository: 'demo/multi',
      tag: 'latest',
      image: multi,
      expect: 'amd64 affected, arm64 affected per advisory only',
    },
  ];
}
