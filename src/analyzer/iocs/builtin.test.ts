import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { builtinIocDir, builtinIocSets } from './builtin.js';
import type { IocRule } from './schema.js';

// The team's reference IOC file, with the sources of every value. A copy lives in the repository so
// this check runs in any clone; the original sits outside it, next to the checkout.
const referenceCopy = fileURLToPath(new URL('../fixtures/xz-cve-2024-3094.reference.json', import.meta.url));
const sharedReference = fileURLToPath(
  new URL('../../../../shared/reference/xz-cve-2024-3094.iocs.json', import.meta.url),
);

const xz = () => builtinIocSets().find((s) => s.id === 'xz-cve-2024-3094')!;
const rulesOf = <K extends IocRule['kind']>(kind: K) =>
  xz().rules.filter((r): r is Extract<IocRule, { kind: K }> => r.kind === kind);

describe('builtinIocSets', () => {
  it('finds the iocs/ folder of the repository from the source layout', () => {
    expect(builtinIocDir()).toBe(fileURLToPath(new URL('../../../iocs/', import.meta.url)));
  });

  it('loads the XZ set with a version, references and a source on every rule', () => {
    const set = xz();
    expect(set.version).toMatch(/^\d{4}\.\d{2}\.\d{2}$/);
    expect(set.references.length).toBeGreaterThan(5);
    expect(set.rules.filter((r) => !r.source)).toEqual([]);
    expect(new Set(set.rules.map((r) => r.kind))).toEqual(
      new Set(['file-sha256', 'file-md5', 'dpkg-version', 'byte-signature']),
    );
  });

  it('limits every hash and signature rule by path or size, so no rule hashes every file', () => {
    for (const r of xz().rules) {
      if (r.kind === 'file-sha256' || r.kind === 'file-md5') expect(r.paths ?? r.size, r.id).toBeDefined();
    }
  });

  it('returns the same array on every call (read once)', () => {
    expect(builtinIocSets()).toBe(builtinIocSets());
  });
});

describe('the built-in XZ set against the reference IOC file (src/analyzer/fixtures/xz-cve-2024-3094.reference.json)', () => {
  const ref = JSON.parse(readFileSync(referenceCopy, 'utf8'));
  type RefFile = { sha256: string; md5?: string; size?: number };

  it('carries every reference file hash, with the same md5 and size', () => {
    const bySha = new Map((ref.files as RefFile[]).map((f) => [f.sha256, f]));
    const byMd5 = new Map((ref.files as RefFile[]).filter((f) => f.md5).map((f) => [f.md5!, f]));
    const shaRules = rulesOf('file-sha256');
    expect(new Set(shaRules.map((r) => r.sha256))).toEqual(new Set(bySha.keys()));
    for (const r of shaRules) if (r.size !== undefined) expect(r.size, r.id).toBe(bySha.get(r.sha256)!.size);
    const md5Rules = rulesOf('file-md5');
    expect(new Set(md5Rules.map((r) => r.md5))).toEqual(new Set(byMd5.keys()));
    for (const r of md5Rules) if (r.size !== undefined) expect(r.size, r.id).toBe(byMd5.get(r.md5)!.size);
  });

  it('carries the Debian liblzma5 and xz-utils versions and fixed version of the advisory', () => {
    const deb = ref.packages.filter((p: { ecosystem: string }) => p.ecosystem === 'deb');
    const rules = rulesOf('dpkg-version');
    for (const p of deb) {
      const hits = rules.filter(
        (r) => r.package === p.name && p.versions.every((v: string) => r.versions?.includes(v)),
      );
      expect(hits.length, `${p.name} ${p.distro}`).toBeGreaterThan(0);
      expect(hits.every((r) => r.fixedIn === p.fixed)).toBe(true);
    }
    const payload = rules.find((r) => r.architectures)!;
    const liblzma = deb.find((p: { payload_expected_versions?: string[] }) => p.payload_expected_versions);
    expect(payload.versions).toEqual(liblzma.payload_expected_versions);
    expect(payload.architectures).toEqual(liblzma.arch_with_payload);
  });

  it('carries exactly the on-disk byte signatures, ELF-only', () => {
    const onDisk = ref.signatures.filter((s: { matches_on_disk: unknown }) => s.matches_on_disk === true);
    const sigs = rulesOf('byte-signature');
    expect(sigs.map((s) => s.hex)).toEqual(onDisk.map((s: { hex: string }) => s.hex));
    expect(sigs.every((s) => s.elfOnly === true)).toBe(true);
  });

  it('lists the reference URLs', () => {
    expect(xz().references).toEqual(ref.references);
  });
});

describe.skipIf(!existsSync(sharedReference))('the repository copy of the reference IOC file', () => {
  it('is the same as ../shared/reference/xz-cve-2024-3094.iocs.json', () => {
    expect(readFileSync(referenceCopy, 'utf8')).toBe(readFileSync(sharedReference, 'utf8'));
  });
});
