import { ConfigError } from './errors.js';

/** An image platform as in the OCI image index (`os/architecture[/variant]`). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

/** `linux/arm64/v8` form. */
export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/**
 * Architecture names that `uname -m`, dpkg or other tools use but an OCI image index never does: indexes
 * name architectures as Go's GOARCH does (`amd64`, `arm64`, `386`, `arm` with a variant). A platform
 * written with one of these would silently select nothing, so it is refused, naming the index's name.
 */
const OCI_NAME_OF: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  x64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  arm64v8: { architecture: 'arm64', variant: 'v8' },
  i386: { architecture: '386' },
  i486: { architecture: '386' },
  i586: { architecture: '386' },
  i686: { architecture: '386' },
  x86: { architecture: '386' },
  armv7l: { architecture: 'arm', variant: 'v7' },
  armv7: { architecture: 'arm', variant: 'v7' },
  armhf: { architecture: 'arm', variant: 'v7' },
  arm32v7: { architecture: 'arm', variant: 'v7' },
  armv6l: { architecture: 'arm', variant: 'v6' },
  armv6: { architecture: 'arm', variant: 'v6' },
  arm32v6: { architecture: 'arm', variant: 'v6' },
  armv5l: { architecture: 'arm', variant: 'v5' },
  armv5tel: { architecture: 'arm', variant: 'v5' },
  armel: { architecture: 'arm', variant: 'v5' },
  arm32v5: { architecture: 'arm', variant: 'v5' },
  ppc64el: { architecture: 'ppc64le' },
  powerpc64le: { architecture: 'ppc64le' },
  mips64el: { architecture: 'mips64le' },
};

const FORM = /^[a-z0-9._-]+\/[a-z0-9._-]+(\/[a-z0-9._-]+)?$/;

/**
 * Why a well-formed `os/arch[/variant]` names an architecture no index entry has (`linux/x86_64`), or null
 * (also for a string not of that form: platformProblem says what is wrong with it).
 */
export function architectureNameProblem(s: string): string | null {
  if (!FORM.test(s)) return null;
  const [os, architecture, variant] = s.split('/') as [string, string, string | undefined];
  const oci = OCI_NAME_OF[architecture];
  if (oci === undefined) return null;
  const suggested = formatPlatform({ os, architecture: oci.architecture, variant: oci.variant ?? variant });
  const named = oci.variant ? `"${oci.architecture}" variant "${oci.variant}"` : `"${oci.architecture}"`;
  return `platform "${s}": "${architecture}" is not how an image index names the architecture (it uses Go's GOARCH names, here ${named}); use ${suggested}`;
}

/** Why `s` is not a usable platform, or null when it is one. */
export function platformProblem(s: string): string | null {
  if (!FORM.test(s)) return `platform "${s}" is not of the form os/arch[/variant], for example linux/amd64`;
  return architectureNameProblem(s);
}

/** Parses `os/arch[/variant]` as typed by a user. */
export function parsePlatform(s: string): Platform {
  const problem = platformProblem(s);
  if (problem !== null) throw new ConfigError(problem);
  const [os, architecture, variant] = s.split('/') as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * The variant a runtime reads an entry's missing or short variant as (containerd's platform
 * normalization): amd64 without a variant is v1, arm64 without one is v8, arm without one is v7, and
 * arm's `7` is `v7`. So `linux/arm64/v8` selects an arm64 entry that names no variant, as `docker pull
 * --platform` does.
 */
function effectiveVariant(architecture: string, variant: string | undefined): string | undefined {
  if (architecture === 'amd64') return variant ?? 'v1';
  if (architecture === 'arm64')
    return variant === undefined || variant === '8' || variant === 'v8.0' ? 'v8' : variant;
  if (architecture === 'arm')
    return variant === undefined ? 'v7' : /^[5-8]$/.test(variant) ? `v${variant}` : variant;
  return variant;
}

/**
 * True when `candidate` is selected by `wanted`: a wanted platform without variant matches any variant;
 * with one, variants compare as a runtime reads them (effectiveVariant).
 */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  if (wanted.os !== candidate.os || wanted.architecture !== candidate.architecture) return false;
  if (wanted.variant === undefined) return true;
  return (
    effectiveVariant(wanted.architecture, wanted.variant) ===
    effectiveVariant(candidate.architecture, candidate.variant)
  );
}
