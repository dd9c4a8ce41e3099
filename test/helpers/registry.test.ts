/**
 * Self-tests of the fixture infrastructure against outside oracles: images pushed by our helpers
 * into the real registry must read back through skopeo byte-for-byte, and the auth flavours must
 * behave like the registry's documentation says.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { alpineEntries, debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import {
  type BuiltImage,
  buildImage,
  buildIndex,
  buildLayer,
  sha256,
} from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import type { ProvidedRegistry } from '../setup/registries.js';

const registries = inject('registries');
const tmp = mkdtempSync(join(tmpdir(), 'hubcrawl-selftest-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function creds(r: ProvidedRegistry): string[] {
  return r.username ? ['--creds', `${r.username}:${r.password}`] : [];
}

function skopeoRaw(r: ProvidedRegistry, ref: string): Buffer {
  return execFileSync(
    'skopeo',
    ['inspect', '--raw', '--tls-verify=false', ...creds(r), `docker://${r.host}/${ref}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

function skopeoCopyToDir(r: ProvidedRegistry, ref: string): string {
  const dir = mkdtempSync(join(tmp, 'copy-'));
  execFileSync('skopeo', [
    'copy',
    '--quiet',
    '--preserve-digests',
    '--src-tls-verify=false',
    ...(r.username ? ['--src-creds', `${r.username}:${r.password}`] : []),
    `docker://${r.host}/${ref}`,
    `dir:${dir}`,
  ]);
  return dir;
}

const hex = (d: string): string => d.slice('sha256:'.length);
const fileDigest = (p: string): string =>
  `sha256:${createHash('sha256').update(readFileSync(p)).digest('hex')}`;

function expectDirHoldsImage(dir: string, image: BuiltImage): void {
  expect(readFileSync(join(dir, 'manifest.json')).equals(image.manifest)).toBe(true);
  for (const blob of [image.config, ...image.layers]) {
    expect(fileDigest(join(dir, hex(blob.digest)))).toBe(blob.digest);
  }
}

describe('image builder + pushImage against the real registry (skopeo as oracle)', () => {
  it('a docker schema2 image reads back byte-identical and skopeo copies every blob with matching digests', async () => {
    const image = await buildImage({
      layers: [
        { entries: debianBaseEntries() },
        { entries: [{ type: 'file', path: 'app/x', content: 'x' }] },
      ],
    });
    const { digest } = await pushImage(registries.none, 'selftest/docker', 'v1', image);
    expect(digest).toBe(image.digest);
    expect(skopeoRaw(registries.none, 'selftest/docker:v1').equals(image.manifest)).toBe(true);
    expectDirHoldsImage(skopeoCopyToDir(registries.none, 'selftest/docker:v1'), image);
  });

  it('an OCI image with a zstd layer reads back byte-identical and copies with matching digests', async () => {
    const image = await buildImage({
      format: 'oci',
      layers: [
        { entries: alpineEntries(), compression: 'zstd' },
        { entries: [{ type: 'file', path: 'a', content: 'b' }] },
      ],
    });
    expect(image.layers[0]?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    await pushImage(registries.none, 'selftest/oci', 'zstd', image);
    expect(skopeoRaw(registries.none, 'selftest/oci:zstd').equals(image.manifest)).toBe(true);
    expectDirHoldsImage(skopeoCopyToDir(registries.none, 'selftest/oci:zstd'), image);
  });

  it('the config diff_ids are the sha256 of the uncompressed layer tars, as skopeo inspect reports them', async () => {
    const image = await buildImage({
      format: 'oci',
      layers: [{ entries: alpineEntries(), compression: 'zstd' }],
    });
    await pushImage(registries.none, 'selftest/oci', 'diffid', image);
    const config = JSON.parse(
      execFileSync('skopeo', [
        'inspect',
        '--config',
        '--tls-verify=false',
        `docker://${registries.none.host}/selftest/oci:diffid`,
      ]).toString(),
    );
    const layerFile = join(tmp, 'layer.zst');
    writeFileSync(layerFile, image.layers[0]?.data ?? Buffer.alloc(0));
    const tar = execFileSync('zstd', ['-d', '-c', layerFile]);
    expect(config.rootfs.diff_ids).toEqual([sha256(tar)]);
  });

  it('an OCI index with two platforms and an attestation reads back, and each child by digest', async () => {
    const base = await buildLayer(debianBaseEntries({ arch: 'amd64' }), 'gzip', 'oci');
    const amd64 = await buildImage({ format: 'oci', layers: [base] });
    const arm64 = await buildImage({
      format: 'oci',
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      layers: [base, { entries: [{ type: 'file', path: 'arm', content: 'arm' }] }],
    });
    const index = buildIndex({ format: 'oci', images: [amd64, arm64], withAttestation: true });
    await pushImage(registries.none, 'selftest/multi', 'latest', index);
    expect(skopeoRaw(registries.none, 'selftest/multi:latest').equals(index.manifest)).toBe(true);
    for (const child of [amd64, arm64, ...index.extraChildren]) {
      expect(skopeoRaw(registries.none, `selftest/multi@${child.digest}`).equals(child.manifest)).toBe(true);
    }
    const armDir = mkdtempSync(join(tmp, 'arm-'));
    execFileSync('skopeo', [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--override-arch',
      'arm64',
      '--override-variant',
      'v8',
      `docker://${registries.none.host}/selftest/multi:latest`,
      `dir:${armDir}`,
    ]);
    expectDirHoldsImage(armDir, arm64);
  });

  it('a docker manifest list pushed untagged is reachable by its digest only', async () => {
    const a = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'a', content: '1' }] }] });
    const b = await buildImage({
      platform: { os: 'linux', architecture: 'arm64' },
      layers: [{ entries: [{ type: 'file', path: 'b', content: '2' }] }],
    });
    const list = buildIndex({ images: [a, b] });
    await pushImage(registries.none, 'selftest/untagged', undefined, list);
    expect(skopeoRaw(registries.none, `selftest/untagged@${list.digest}`).equals(list.manifest)).toBe(true);
    const tags = (await (await fetch(`${registries.none.url}/v2/selftest/untagged/tags/list`)).json()) as {
      tags?: string[];
    };
    expect(tags.tags ?? []).toEqual([]);
  });

  it('building the same image twice gives the same digest', async () => {
    const build = () =>
      buildImage({ layers: [{ entries: debianBaseEntries({ liblzmaVersion: '5.6.1-1' }) }] });
    expect((await build()).digest).toBe((await build()).digest);
  });
});

describe('auth flavours', () => {
  it('the htpasswd registry refuses anonymous requests with a Basic challenge', async () => {
    const res = await fetch(`${registries.htpasswd.url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it('the htpasswd registry accepts pushes and skopeo reads with the basic credentials', async () => {
    const image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'h', content: 'h' }] }] });
    await pushImage(registries.htpasswd, 'selftest/basic', 'v1', image);
    expect(skopeoRaw(registries.htpasswd, 'selftest/basic:v1').equals(image.manifest)).toBe(true);
    expect(() => skopeoRaw({ ...registries.htpasswd, username: undefined }, 'selftest/basic:v1')).toThrow();
  });

  it('the token registry answers 401 with a Bearer challenge naming our realm and service', async () => {
    const res = await fetch(`${registries.token.url}/v2/selftest/token/manifests/v1`);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain(`Bearer realm="${registries.token.tokenRealm}"`);
    expect(challenge).toContain(`service="${registries.token.tokenService}"`);
    expect(challenge).toContain('scope="repository:selftest/token:pull"');
  });

  it('the token registry accepts an image pushed with a token and skopeo reads it back', async () => {
    const image = await buildImage({
      format: 'oci',
      layers: [{ entries: [{ type: 'file', path: 't', content: 't' }] }],
    });
    await pushImage(registries.token, 'selftest/token', 'v1', image);
    expect(skopeoRaw(registries.token, 'selftest/token:v1').equals(image.manifest)).toBe(true);
  });

  it('an anonymous token pulls from the token registry', async () => {
    const image = await buildImage({
      layers: [{ entries: [{ type: 'file', path: 'anon', content: 'anon' }] }],
    });
    await pushImage(registries.token, 'selftest/anon', 'v1', image);
    const url = `${registries.token.tokenRealm}?service=${registries.token.tokenService}&scope=repository:selftest/anon:pull`;
    const { token } = (await (await fetch(url)).json()) as { token: string };
    const res = await fetch(`${registries.token.url}/v2/selftest/anon/manifests/v1`, {
      headers: { authorization: `Bearer ${token}`, accept: image.mediaType },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(image.digest);
  });
});
