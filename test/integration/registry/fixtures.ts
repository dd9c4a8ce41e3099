/** Images pushed into the real registry for the registry-client integration tests. */
import { randomBytes } from 'node:crypto';
import {
  type BuiltImage,
  type BuiltIndex,
  buildImage,
  buildIndex,
} from '../../../scripts/lib/image-builder.js';
import { type PushTarget, pushImage } from '../../../scripts/lib/push.js';

export interface Fixtures {
  schema2: BuiltImage;
  oci: BuiltImage;
  index: BuiltIndex;
  /** A layer big enough to span many chunks (random, so incompressible). */
  big: BuiltImage;
  manyTags: string[];
  repositories: string[];
}

/** Builds the fixture images and pushes them into `target`. */
export function pushFixtures(target: PushTarget): Promise<Fixtures> {
  return buildAndPush(target);
}

async function buildAndPush(target: PushTarget): Promise<Fixtures> {
  const schema2 = await buildImage({
    format: 'docker',
    layers: [
      { entries: [{ type: 'file', path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }] },
    ],
  });
  const oci = await buildImage({
    format: 'oci',
    layers: [
      {
        entries: [{ type: 'file', path: 'usr/lib/liblzma.so.5', content: 'zstd layer' }],
        compression: 'zstd',
      },
    ],
  });
  const amd64 = await buildImage({
    format: 'oci',
    platform: { os: 'linux', architecture: 'amd64' },
    layers: [{ entries: [{ type: 'file', path: 'arch', content: 'amd64' }] }],
  });
  const arm64 = await buildImage({
    format: 'oci',
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    layers: [{ entries: [{ type: 'file', path: 'arch', content: 'arm64' }] }],
  });
  const index = buildIndex({ images: [amd64, arm64], format: 'oci', withAttestation: true });
  const big = await buildImage({
    format: 'docker',
    layers: [
      {
        entries: [{ type: 'file', path: 'blob.bin', content: randomBytes(3 * 1024 * 1024) }],
        compression: 'none',
      },
    ],
  });

  await pushImage(target, 'fixtures/schema2', 'v1', schema2);
  await pushImage(target, 'fixtures/oci', 'zstd', oci);
  await pushImage(target, 'fixtures/multi', 'latest', index);
  await pushImage(target, 'fixtures/big', 'latest', big);
  const manyTags = ['a1', 'a2', 'b1', 'b2', 'c1', 'c2', 'd1'];
  for (const t of manyTags) await pushImage(target, 'fixtures/many', t, schema2);
  const repositories = [
    'fixtures/big',
    'fixtures/many',
    'fixtures/multi',
    'fixtures/oci',
    'fixtures/schema2',
  ];
  return { schema2, oci, index, big, manyTags, repositories };
}

/** Collects an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Reads a blob stream to a Buffer (tests only: fixtures are small). */
export async function drain(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of it) chunks.push(c);
  return Buffer.concat(chunks);
}
