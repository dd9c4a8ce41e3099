/**
 * The IOC set file format (documented in docs/iocs.md). Strict objects, so a misspelt field fails
 * loudly instead of silently weakening a rule.
 */
import { z } from 'zod';
import { compareDebianVersions, isValidDebianVersion } from '../dpkg/version.js';
import { globProblem } from '../glob.js';
import { hexProblem } from '../signatures.js';

const ruleId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'expected an id of letters, digits, ".", "_", ":", "-"');

const glob = z.string().superRefine((g, ctx) => {
  const problem = globProblem(g);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

const paths = z.array(glob).min(1, 'expected at least one path glob (or leave "paths" out)');
const debVersion = z.string().refine(isValidDebianVersion, 'expected a Debian version string');

/**
 * The names `uname -m`, Docker platforms or other distributions give some architectures, and what dpkg's
 * `Architecture:` field calls them. Matching compares against that field exactly, so a rule written with
 * one of these would silently never match.
 */
const DPKG_NAME_OF: Readonly<Record<string, readonly string[]>> = {
  x86_64: ['amd64'],
  'x86-64': ['amd64'],
  aarch64: ['arm64'],
  arm64v8: ['arm64'],
  // Docker's `arm` is either of Debian's two 32-bit ARM ports.
  arm: ['armhf', 'armel'],
  armv7l: ['armhf'],
  armv7: ['armhf'],
  armv6l: ['armel'],
  i686: ['i386'],
  i586: ['i386'],
  x86: ['i386'],
  ppc64le: ['ppc64el'],
  mips64le: ['mips64el'],
};

const dpkgArchitecture = z.string().superRefine((arch, ctx) => {
  const dpkgNames = DPKG_NAME_OF[arch];
  if (dpkgNames !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `"${arch}" is not what dpkg calls an architecture; its Architecture: field says ${dpkgNames.map((n) => `"${n}"`).join(' or ')}`,
    });
  } else if (!/^[a-z0-9][a-z0-9-]*$/.test(arch)) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a Debian architecture name as dpkg writes it (e.g. "amd64")',
    });
  }
});

/**
 * A binary package name as Debian policy §5.6.7 allows it, and dpkg's `Package:` field holds it: matching
 * compares with that field exactly, so a name outside the rule could never match.
 */
const debianPackageName = z.string().superRefine((name, ctx) => {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(name)} is not a Debian package name: Debian policy (5.6.7) makes one at least two characters long, of lowercase letters (a-z), digits, "+", "-" and "." only, starting with a letter or digit`,
    });
  }
});

const common = {
  id: ruleId,
  /** What the rule means and how strong it is. */
  description: z.string().optional(),
  /** Where the value comes from (advisory, repository + commit, article). */
  source: z.string().optional(),
};

/**
 * A hash of `length` hex digits, in either case, kept lowercase as the analyzer records hashes: sha256sum
 * writes lowercase, but Windows' Get-FileHash and certutil, and many reports, write uppercase.
 */
function hexDigest(length: number) {
  return z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${length}}$`), `expected ${length} hex characters`)
    .transform((hex) => hex.toLowerCase());
}

const fileSha256 = z.strictObject({
  ...common,
  kind: z.literal('file-sha256'),
  sha256: hexDigest(64),
  paths: paths.optional(),
  size: z.number().int().nonnegative().optional(),
});

const fileMd5 = z.strictObject({
  ...common,
  kind: z.literal('file-md5'),
  md5: hexDigest(32),
  paths: paths.optional(),
  size: z.number().int().nonnegative().optional(),
});

const dpkgVersion = z
  .strictObject({
    ...common,
    kind: z.literal('dpkg-version'),
    package: debianPackageName,
    versions: z.array(debVersion).min(1).optional(),
    introduced: debVersion.optional(),
    fixed: debVersion.optional(),
    /** Informational: the first fixed version per the advisory; matching never uses it. */
    fixedIn: debVersion.optional(),
    architectures: z.array(dpkgArchitecture).min(1).optional(),
  })
  .superRefine((r, ctx) => {
    const range = r.introduced !== undefined || r.fixed !== undefined;
    if (r.versions !== undefined && range) {
      ctx.addIssue({ code: 'custom', message: 'use either "versions" or "introduced"/"fixed", not both' });
    } else if (r.versions === undefined && !range) {
      ctx.addIssue({ code: 'custom', message: 'expected "versions" or "introduced"/"fixed"' });
    } else if (
      r.introduced !== undefined &&
      r.fixed !== undefined &&
      isValidDebianVersion(r.introduced) &&
      isValidDebianVersion(r.fixed) &&
      compareDebianVersions(r.introduced, r.fixed) >= 0
    ) {
      // introduced is inclusive, fixed exclusive: such a range holds no version, so the rule could never match.
      ctx.addIssue({
        code: 'custom',
        path: ['fixed'],
        message: `"fixed" (${r.fixed}) must be a later Debian version than "introduced" (${r.introduced}); the range holds no version`,
      });
    }
  });

const byteSignature = z.strictObject({
  ...common,
  kind: z.literal('byte-signature'),
  hex: z.string().superRefine((h, ctx) => {
    const problem = hexProblem(h);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  }),
  paths,
  elfOnly: z.boolean().optional(),
});

/**
 * A rule whose `kind` names no kind, in place of zod's "Invalid discriminator value. Expected
 * 'file-sha256' | …": the kind given, and the kinds there are. Other issues keep zod's message.
 */
function unknownKind(issue: z.core.$ZodRawIssue): string | undefined {
  // Options are listed only when no option's discriminator matched.
  const kinds = issue.code === 'invalid_union' ? issue.options : undefined;
  if (!Array.isArray(kinds)) return undefined;
  const kind = (issue.input as Record<string, unknown>).kind;
  const given = kind === undefined ? 'no rule kind given' : `unknown rule kind ${JSON.stringify(kind)}`;
  return `${given}; expected one of ${kinds.join(', ')}`;
}

export const iocRuleSchema = z.discriminatedUnion('kind', [fileSha256, fileMd5, dpkgVersion, byteSignature], {
  error: unknownKind,
});

export const iocSetSchema = z.strictObject({
  /** Stable identifier recorded with every finding (`xz-cve-2024-3094`). */
  id: ruleId,
  /** Bumped on every change to the rules (`2026.11.28`); recorded with every finding. */
  version: z.string().min(1).max(64),
  title: z.string().min(1),
  description: z.string().optional(),
  references: z.array(z.url()),
  rules: z.array(iocRuleSchema).min(1, 'expected at least one rule'),
});

export type IocSet = z.infer<typeof iocSetSchema>;
export type IocRule = z.infer<typeof iocRuleSchema>;
export type IocRuleKind = IocRule['kind'];
export type FileSha256Rule = z.infer<typeof fileSha256>;
export type FileMd5Rule = z.infer<typeof fileMd5>;
export type DpkgVersionRule = z.infer<typeof dpkgVersion>;
export type ByteSignatureRule = z.infer<typeof byteSignature>;
