/**
 * Realistic Debian-like (and Alpine) root filesystem entries for tests and the demo: os-release,
 * a dpkg status database with real-shaped paragraphs, md5sums, and a stand-in liblzma library.
 * The liblzma5 version is a parameter so fixtures can be clean (5.4.1-0.2) or in the CVE-2024-3094
 * range (5.6.0-0.1, 5.6.0-0.2, 5.6.1-1).
 */
import { createHash } from 'node:crypto';
import type { LayerEntry } from './image-builder.js';

export interface DebianBaseOptions {
  /** Debian: bookworm (default), bullseye, trixie, sid; Ubuntu: noble, jammy; Kali: kali-rolling. */
  codename?: string;
  osId?: 'debian' | 'ubuntu' | 'kali' | string;
  /** dpkg version of liblzma5 and xz-utils; default '5.4.1-0.2' (bookworm). */
  liblzmaVersion?: string;
  /** dpkg architecture; default amd64. */
  arch?: string;
  extraPackages?: Array<{ name: string; version: string; source?: string }>;
  /** Make /etc/os-release a symlink to ../usr/lib/os-release as real Debian does; default false (two files). */
  osReleaseSymlink?: boolean;
}

const MULTIARCH: Record<string, string> = {
  amd64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  armhf: 'arm-linux-gnueabihf',
  i386: 'i386-linux-gnu',
  ppc64el: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

const DEBIAN_RELEASES: Record<string, { versionId?: string; debianVersion: string }> = {
  buster: { versionId: '10', debianVersion: '10.13' },
  bullseye: { versionId: '11', debianVersion: '11.9' },
  bookworm: { versionId: '12', debianVersion: '12.5' },
  trixie: { debianVersion: 'trixie/sid' },
  sid: { debianVersion: 'trixie/sid' },
};

const UBUNTU_RELEASES: Record<string, string> = { jammy: '22.04', noble: '24.04', focal: '20.04' };

const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

/** Upstream version inside a dpkg version: drops epoch and revision, follows `+really`. */
export function upstreamOf(dpkgVersion: string): string {
  const noEpoch = dpkgVersion.replace(/^\d+:/, '');
  const dash = noEpoch.lastIndexOf('-');
  const upstream = dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
  const really = /\+really(.+)$/.exec(upstream);
  return really?.[1] ?? upstream;
}

function osRelease(osId: string, codename: string): { osRelease: string; debianVersion: string } {
  if (osId === 'ubuntu') {
    const v = UBUNTU_RELEASES[codename] ?? '24.04';
    return {
      osRelease: [
        `PRETTY_NAME="Ubuntu ${v} LTS"`,
        'NAME="Ubuntu"',
        `VERSION_ID="${v}"`,
        `VERSION="${v} LTS (${codename[0]?.toUpperCase()}${codename.slice(1)})"`,
        `VERSION_CODENAME=${codename}`,
        'ID=ubuntu',
        'ID_LIKE=debian',
        'HOME_URL="https://www.ubuntu.com/"',
        `UBUNTU_CODENAME=${codename}`,
      ].join('\n'),
      debianVersion: 'trixie/sid',
    };
  }
  if (osId === 'kali') {
    return {
      osRelease: [
        'PRETTY_NAME="Kali GNU/Linux Rolling"',
        'NAME="Kali GNU/Linux"',
        'VERSION_ID="2024.1"',
        'VERSION="2024.1"',
        `VERSION_CODENAME=${codename}`,
        'ID=kali',
        'ID_LIKE=debian',
        'HOME_URL="https://www.kali.org/"',
      ].join('\n'),
      debianVersion: 'kali-rolling',
    };
  }
  const rel = DEBIAN_RELEASES[codename] ?? { debianVersion: `${codename}/sid` };
  const pretty = rel.versionId
    ? `Debian GNU/Linux ${rel.versionId} (${codename})`
    : `Debian GNU/Linux ${rel.debianVersion}`;
  return {
    osRelease: [
      `PRETTY_NAME="${pretty}"`,
      'NAME="Debian GNU/Linux"',
      ...(rel.versionId ? [`VERSION_ID="${rel.versionId}"`, `VERSION="${rel.versionId} (${codename})"`] : []),
      `VERSION_CODENAME=${codename}`,
      'ID=debian',
      'HOME_URL="https://www.debian.org/"',
      'SUPPORT_URL="https://www.debian.org/support"',
      'BUG_REPORT_URL="https://bugs.debian.org/"',
    ].join('\n'),
    debianVersion: rel.debianVersion,
  };
}

function paragraph(fields: Array<[string, string | undefined]>): string {
  return fields
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

/** A base image layer: os-release, dpkg status/md5sums, liblzma stand-in, the usual dirs. */
export function debianBaseEntries(opts: DebianBaseOptions = {}): LayerEntry[] {
  const osId = opts.osId ?? 'debian';
  const codename =
    opts.codename ?? (osId === 'ubuntu' ? 'noble' : osId === 'kali' ? 'kali-rolling' : 'bookworm');
  const lzmaVersion = opts.liblzmaVersion ?? '5.4.1-0.2';
  const arch = opts.arch ?? 'amd64';
  const triplet = MULTIARCH[arch] ?? `${arch}-linux-gnu`;
  const soName = `liblzma.so.5.${upstreamOf(lzmaVersion).replace(/^5\./, '')}`;
  const libDir = `usr/lib/${triplet}`;
  // A stand-in, not a real ELF: tests key on the path, the version and the hash we record here.
  const libContent = Buffer.from(
    `\x7fELF hubcrawl fixture stand-in for ${soName} (${lzmaVersion}, ${arch})\n`,
  );
  const copyright =
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: XZ Utils\n';
  const { osRelease: osReleaseText, debianVersion } = osRelease(osId, codename);

  const status = [
    paragraph([
      ['Package', 'base-files'],
      ['Essential', 'yes'],
      ['Status', 'install ok installed'],
      ['Priority', 'required'],
      ['Section', 'admin'],
      ['Installed-Size', '340'],
      ['Maintainer', 'Santiago Vila <sanvila@debian.org>'],
      ['Architecture', arch],
      ['Multi-Arch', 'foreign'],
      ['Version', osId === 'debian' ? `${DEBIAN_RELEASES[codename]?.versionId ?? '13'}.5` : '13ubuntu9'],
      ['Replaces', 'base, dpkg (<= 1.15.0), miscutils'],
      ['Provides', 'base'],
      [
        'Conffiles',
        '\n /etc/debian_version 4b2ea0e4f1e5a9f6d2a4fc2b8c0e6c7b\n /etc/host.conf 4eb63731c9f5e30903ac4fc07a7fe3d6',
      ],
      [
        'Description',
        'Debian base system miscellaneous files\n This package contains the basic filesystem hierarchy of a Debian system, and\n several important miscellaneous files, such as /etc/debian_version,\n /etc/host.conf, /etc/issue, /etc/motd, /etc/profile, and others,\n and the text of several common licenses in use on Debian systems.',
      ],
    ]),
    paragraph([
      ['Package', 'libc6'],
      ['Status', 'install ok installed'],
      ['Priority', 'optional'],
      ['Section', 'libs'],
      ['Installed-Size', '12986'],
      ['Maintainer', 'GNU Libc Maintainers <debian-glibc@lists.debian.org>'],
      ['Architecture', arch],
      ['Multi-Arch', 'same'],
      ['Source', 'glibc'],
      ['Version', '2.36-9+deb12u4'],
      ['Depends', 'libgcc-s1'],
      ['Recommends', 'libidn2-0 (>= 2.0.5~)'],
      [
        'Description',
        'GNU C Library: Shared libraries\n Contains the standard libraries that are used by nearly all programs on\n the system. This package includes shared versions of the standard C library\n and the standard math library, as well as many others.',
      ],
      ['Homepage', 'https://www.gnu.org/software/libc/libc.html'],
    ]),
    paragraph([
      ['Package', 'liblzma5'],
      ['Status', 'install ok installed'],
      ['Priority', 'required'],
      ['Section', 'libs'],
      ['Installed-Size', '330'],
      ['Maintainer', 'Jonathan Nieder <jrnieder@gmail.com>'],
      ['Architecture', arch],
      ['Multi-Arch', 'same'],
      ['Source', 'xz-utils'],
      ['Version', lzmaVersion],
      ['Depends', 'libc6 (>= 2.34)'],
      ['Breaks', 'liblzma2 (<< 5.1.1alpha+20110809-3~)'],
      [
        'Description',
        'XZ-format compression library\n XZ is the successor to the Lempel-Ziv/Markov-chain Algorithm\n compression format, which provides memory-hungry but powerful\n compression (often better than bzip2) and fast, easy decompression.\n .\n The native format of liblzma is XZ; it also supports raw (headerless)\n streams and the older LZMA format used by lzma.',
      ],
      ['Homepage', 'https://tukaani.org/xz/'],
    ]),
    paragraph([
      ['Package', 'xz-utils'],
      ['Status', 'install ok installed'],
      ['Priority', 'important'],
      ['Section', 'utils'],
      ['Installed-Size', '1462'],
      ['Maintainer', 'Jonathan Nieder <jrnieder@gmail.com>'],
      ['Architecture', arch],
      ['Multi-Arch', 'foreign'],
      ['Version', lzmaVersion],
      ['Depends', `libc6 (>= 2.34), liblzma5 (>= ${upstreamOf(lzmaVersion)})`],
      [
        'Description',
        'XZ-format compression utilities\n XZ is the successor to the Lempel-Ziv/Markov-chain Algorithm\n compression format.',
      ],
      ['Homepage', 'https://tukaani.org/xz/'],
    ]),
    paragraph([
      ['Package', 'zlib1g'],
      ['Status', 'install ok installed'],
      ['Priority', 'required'],
      ['Section', 'libs'],
      ['Installed-Size', '168'],
      ['Maintainer', 'Mark Brown <broonie@debian.org>'],
      ['Architecture', arch],
      ['Multi-Arch', 'same'],
      ['Source', 'zlib'],
      ['Version', '1:1.2.13.dfsg-1'],
      ['Depends', 'libc6 (>= 2.14)'],
      [
        'Description',
        'compression library - runtime\n zlib is a library implementing the deflate compression method found\n in gzip and PKZIP.',
      ],
      ['Homepage', 'http://zlib.net/'],
    ]),
    ...(opts.extraPackages ?? []).map((p) =>
      paragraph([
        ['Package', p.name],
        ['Status', 'install ok installed'],
        ['Priority', 'optional'],
        ['Section', 'misc'],
        ['Installed-Size', '100'],
        ['Maintainer', 'Hubcrawl Fixtures <fixtures@example.invalid>'],
        ['Architecture', arch],
        ['Source', p.source],
        ['Version', p.version],
        ['Description', `fixture package ${p.name}\n Generated by hubcrawl's debian-fixtures for tests.`],
      ]),
    ),
  ].join('\n\n');

  const md5sums = [
    `${md5(libContent)}  ${libDir}/${soName}`,
    `${md5(copyright)}  usr/share/doc/liblzma5/copyright`,
  ].join('\n');

  return [
    ...[
      'bin',
      'etc',
      'usr',
      'usr/bin',
      'usr/lib',
      libDir,
      'usr/share',
      'usr/share/doc',
      'usr/share/doc/liblzma5',
    ].map((path): LayerEntry => ({ type: 'dir', path })),
    ...['var', 'var/lib', 'var/lib/dpkg', 'var/lib/dpkg/info', 'tmp'].map(
      (path): LayerEntry => ({ type: 'dir', path, ...(path === 'tmp' ? { mode: 0o1777 } : {}) }),
    ),
    { type: 'file', path: 'usr/lib/os-release', content: `${osReleaseText}\n` },
    opts.osReleaseSymlink
      ? { type: 'symlink', path: 'etc/os-release', target: '../usr/lib/os-release' }
      : { type: 'file', path: 'etc/os-release', content: `${osReleaseText}\n` },
    { type: 'file', path: 'etc/debian_version', content: `${debianVersion}\n` },
    { type: 'file', path: 'etc/host.conf', content: 'multi on\n' },
    { type: 'file', path: 'var/lib/dpkg/status', content: `${status}\n` },
    { type: 'file', path: `var/lib/dpkg/info/liblzma5:${arch}.md5sums`, content: `${md5sums}\n` },
    {
      type: 'file',
      path: `var/lib/dpkg/info/liblzma5:${arch}.list`,
      content: `/.\n/usr\n/${libDir}\n/${libDir}/${soName}\n/${libDir}/liblzma.so.5\n`,
    },
    { type: 'file', path: `${libDir}/${soName}`, content: libContent },
    { type: 'symlink', path: `${libDir}/liblzma.so.5`, target: soName },
    { type: 'file', path: 'usr/share/doc/liblzma5/copyright', content: copyright },
    { type: 'file', path: 'usr/bin/xz', content: '\x7fELF hubcrawl fixture stand-in for xz\n', mode: 0o755 },
  ];
}

/** A minimal Alpine root: os-release ID=alpine and an apk installed database (with xz-libs). */
export function alpineEntries(opts: { xzVersion?: string } = {}): LayerEntry[] {
  const xz = opts.xzVersion ?? '5.4.5-r0';
  const apk = (p: string, v: string, origin: string, desc: string): string =>
    [
      'C:Q1hubcrawlfixturechecksum00000000=',
      `P:${p}`,
      `V:${v}`,
      'A:x86_64',
      'S:100000',
      'I:200000',
      `T:${desc}`,
      'U:https://alpinelinux.org',
      'L:MIT',
      `o:${origin}`,
      'm:Natanael Copa <ncopa@alpinelinux.org>',
      't:1700000000',
      'c:0000000000000000000000000000000000000000',
    ].join('\n');
  const installed = [
    apk('musl', '1.2.4-r2', 'musl', 'the musl c library (libc) implementation'),
    apk('busybox', '1.36.1-r15', 'busybox', 'Size optimized toolbox of many common UNIX utilities'),
    apk('xz-libs', xz, 'xz', 'Library and CLI tools for XZ and LZMA compressed files (libraries)'),
  ].join('\n\n');
  return [
    { type: 'dir', path: 'etc' },
    { type: 'dir', path: 'lib' },
    { type: 'dir', path: 'lib/apk' },
    { type: 'dir', path: 'lib/apk/db' },
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/lib' },
    {
      type: 'file',
      path: 'etc/os-release',
      content:
        'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\nHOME_URL="https://alpinelinux.org/"\n',
    },
    { type: 'file', path: 'etc/alpine-release', content: '3.19.1\n' },
    { type: 'file', path: 'lib/apk/db/installed', content: `${installed}\n\n` },
    { type: 'file', path: `usr/lib/liblzma.so.${xz.replace(/-r\d+$/, '')}`, content: 'stand-in\n' },
  ];
}
