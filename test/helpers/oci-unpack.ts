/**
 * An outside oracle for "what is in an image's final filesystem": `skopeo copy` reads an image back
 * from the registry into an OCI layout, `umoci unpack` applies its layers (whiteouts and opaque
 * markers per the OCI image spec, "Whiteouts", as containerd does), and the rootfs is inspected
 * without ever following a symlink, so a link in a test image cannot point the check at the host.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

/** What lives at a path of an unpacked rootfs. */
export type RootfsEntry =
  | { kind: 'file'; sha256: string; mode: number }
  | { kind: 'dir' | 'symlink' | 'other' | 'missing' }
  /** An ancestor is a symlink or not a directory: the path names nothing of its own. */
  | { kind: 'not-a-path' };

/** Copies the image `ref` (`<host>/<repository>:<tag>`, plain http) into the OCI layout `layoutDir` as `layoutTag`. */
export function copyToOciLayout(ref: string, layoutDir: string, layoutTag: string): void {
  execFileSync(
    'skopeo',
    ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layoutDir}:${layoutTag}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/** Unpacks `layoutDir:tag` into the new bundle dir `bundleDir` (umoci); returns the rootfs path. */
export function umociUnpack(layoutDir: string, tag: string, bundleDir: string): string {
  execFileSync('umoci', ['unpack', '--rootless', '--image', `${layoutDir}:${tag}`, bundleDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return realpathSync(join(bundleDir, 'rootfs'));
}

function kindOf(full: string): RootfsEntry {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(full);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  if (st.isFile()) {
    const sha256 = createHash('sha256').update(readFileSync(full)).digest('hex');
    return { kind: 'file', sha256, mode: st.mode & 0o7777 };
  }
  if (st.isDirectory()) return { kind: 'dir' };
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  return { kind: 'other' };
}

/**
 * The entry at absolute `path` inside `rootfs`, resolved one component at a time with lstat: an
 * ancestor that is a symlink (or a file) makes the path `not-a-path` rather than being followed.
 */
export function rootfsEntry(rootfs: string, path: string): RootfsEntry {
  const parts = path.split('/').filter((p) => p !== '');
  let full = rootfs;
  for (const [i, part] of parts.entries()) {
    full = join(full, part);
    const entry = kindOf(full);
    if (i === parts.length - 1) return entry;
    if (entry.kind === 'missing') return entry;
    if (entry.kind !== 'dir') return { kind: 'not-a-path' };
  }
  return { kind: 'dir' };
}

/** Every regular file under `rootfs` (symlinks not followed), by absolute path inside the rootfs. */
export function rootfsFiles(rootfs: string): Array<{ path: string; sha256: string; mode: number }> {
  const out: Array<{ path: string; sha256: string; mode: number }> = [];
  const walk = (dir: string, prefix: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const path = `${prefix}/${d.name}`;
      if (d.isDirectory()) walk(join(dir, d.name), path);
      else if (d.isFile()) {
        const e = kindOf(join(dir, d.name));
        if (e.kind === 'file') out.push({ path, sha256: e.sha256, mode: e.mode });
      }
    }
  };
  walk(rootfs, '');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
