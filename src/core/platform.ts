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
  armel: { architecture: 'arm', variant: 'v6' },
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
 * An index entry's platform as a runtime reads it (containerd's platform normalization), so that it is
 * selected as `docker pull --platform` would select it: an architecture written the uname or dpkg way
 * (`x86_64`, `aarch64`: OCI_NAME_OF) is its GOARCH name, and a missing or short variant is filled in:
 * amd64 without one is v1, arm64 without one is v8 (`8`, `v8.0` too; `9`, `9.0`, `v9.0` are v9), arm
 * without one is v7, and arm's `5` to `8` are `v5` to `v8`.
 */
function asRuntimeReads(p: Platform): { architecture: string; variant: string | undefined } {
  const named = OCI_NAME_OF[p.architecture];
  const architecture = named?.architecture ?? p.architecture;
  const variant = p.variant ?? named?.variant;
  if (architecture === 'amd64') return { architecture, variant: variant ?? 'v1' };
  if (architecture === 'arm64') {
    if (variant === undefined || variant === '8' || variant === 'v8.0')
      return { architecture, variant: 'v8' };
    return {
      architecture,
      variant: variant === '9' || variant === '9.0' || variant === 'v9.0' ? 'v9' : variant,
    };
  }
  if (architecture === 'arm') {
    if (variant === undefined) return { architecture, variant: 'v7' };
    return { architecture, variant: /^[5-8]$/.test(variant) ? `v${variant}` : variant };
  }
  return { architecture, variant };
}

/**
 * True when index entry `candidate` is selected by `wanted`, both read as a runtime reads them
 * (asRuntimeReads): a wanted platform without variant matches any variant of its architecture.
 */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  if (wanted.os !== candidate.os) return false;
  const w = asRuntimeReads(wanted);
  const c = asRuntimeReads(candidate);
  if (w.architecture !== c.architecture) return false;
  return wanted.variant === undefined || w.variant === c.variant;
}
