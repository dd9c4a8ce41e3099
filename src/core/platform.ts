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

/** Parses `os/arch[/variant]` as typed by a user. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    parts.some((p) => p.length === 0 || !/^[a-z0-9._-]+$/.test(p))
  ) {
    throw new ConfigError(`platform "${s}" is not of the form os/arch[/variant], for example linux/amd64`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** True when `candidate` is selected by `wanted` (a wanted platform without variant matches any variant). */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  if (wanted.os !== candidate.os || wanted.architecture !== candidate.architecture) return false;
  return wanted.variant === undefined || wanted.variant === candidate.variant;
}
