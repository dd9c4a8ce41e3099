import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { builtinIocSets } from './builtin.js';
import { compileRules } from './compile.js';
import { parseIocSet } from './load.js';
import type { IocRule } from './schema.js';

const set = (rules: unknown[], version = '1', id = 's') =>
  parseIocSet({ id, version, title: 't', references: [], rules }, 'test');
const SHA = 'a'.repeat(64);
const LIB = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';

describe('compileRules', () => {
  it('makes files matching a rule glob candidates, honouring the size prefilter', () => {
    const c = compileRules([
      set([
        { id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/usr/lib/**/liblzma.so.5*'], size: 247800 },
        { id: 'b', kind: 'file-sha256', sha256: SHA, paths: ['/**/xz-5.6.1.tar.gz'] },
      ]),
    ]);
    expect(c.isCandidate(LIB, 247800)).toBe(true);
    expect(c.isCandidate(LIB, 1000)).toBe(false);
    expect(c.isCandidate('/root/xz-5.6.1.tar.gz', 1)).toBe(true);
    expect(c.isCandidate('/etc/passwd', 247800)).toBe(false);
  });

  it('makes a file a candidate under either spelling of a merged-/usr folder', () => {
    const c = compileRules([
      set([
        { id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/lib/x86_64-linux-gnu/liblzma.so.5*'] },
        { id: 's', kind: 'byte-signature', hex: 'de ad be ef', paths: ['/usr/sbin/sshd'] },
      ]),
    ]);
    expect(c.isCandidate(LIB, 1)).toBe(true);
    expect(c.isCandidate('/lib/x86_64-linux-gnu/liblzma.so.5.6.1', 1)).toBe(true);
    expect(c.isWatchedPath(LIB)).toBe(true);
    expect(c.signatureRulesFor('/sbin/sshd').map((r) => r.ruleId)).toEqual(['s']);
    expect(c.isCandidate('/usr/local/lib/x86_64-linux-gnu/liblzma.so.5.6.1', 1)).toBe(false);
  });

  it('makes every file a candidate for a rule without paths, or every file of its size', () => {
    const any = compileRules([set([{ id: 'a', kind: 'file-md5', md5: 'b'.repeat(32) }])]);
    expect(any.isCandidate('/etc/passwd', 12)).toBe(true);
    const sized = compileRules([set([{ id: 'a', kind: 'file-md5', md5: 'b'.repeat(32), size: 8236 }])]);
    expect(sized.isCandidate('/etc/passwd', 12)).toBe(false);
    expect(sized.isCandidate('/tmp/x', 8236)).toBe(true);
  });

  it('makes every file a candidate with hashAllFiles', () => {
    const c = compileRules([set([{ id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/x'] }])], {
      hashAllFiles: true,
    });
    expect(c.isCandidate('/etc/passwd', 1)).toBe(true);
  });

  it('gives signatures only to files under their globs, and makes those files candidates', () => {
    const c = compileRules([
      set([
        { id: 'sig1', kind: 'byte-signature', hex: '41 42', paths: ['/**/liblzma.so.5*'], elfOnly: true },
        { id: 'sig2', kind: 'byte-signature', hex: '43', paths: ['/bin/*'] },
      ]),
    ]);
    expect(c.hasSignatures).toBe(true);
    expect(c.signatureRulesFor(LIB).map((s) => [s.iocSetId, s.ruleId, s.elfOnly])).toEqual([
      ['s', 'sig1', true],
    ]);
    expect(c.signatureRulesFor('/bin/ls').map((s) => s.ruleId)).toEqual(['sig2']);
    expect(c.signatureRulesFor('/etc/passwd')).toEqual([]);
    expect(c.isCandidate(LIB, 5)).toBe(true);
    expect(compileRules([set([{ id: 'a', kind: 'file-md5', md5: 'b'.repeat(32) }])]).hasSignatures).toBe(
      false,
    );
  });

  it('fingerprints the selection stably and changes it with versions, globs and hashAllFiles', () => {
    const rules: IocRule[] = [{ id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/x'] }];
    const one = set(rules, '1', 'one');
    const two = set([{ id: 'b', kind: 'byte-signature', hex: '41', paths: ['/y'] }], '1', 'two');
    const fp = compileRules([one, two]).fingerprint;
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(compileRules([two, one]).fingerprint).toBe(fp);
    expect(compileRules([set(rules, '2', 'one'), two]).fingerprint).not.toBe(fp);
    expect(compileRules([one, two], { hashAllFiles: true }).fingerprint).not.toBe(fp);
    const otherGlob = set([{ id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/z'] }], '1', 'one');
    expect(compileRules([otherGlob, two]).fingerprint).not.toBe(fp);
  });

  it("is covered by the same sets' hash-all selection, and a hash-all selection only by itself", () => {
    const sets = [set([{ id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/x'] }], '1', 'one')];
    const plain = compileRules(sets);
    const all = compileRules(sets, { hashAllFiles: true });
    expect(plain.coveredBy).toEqual([plain.fingerprint, all.fingerprint]);
    expect(all.coveredBy).toEqual([all.fingerprint]);
    const newer = compileRules([
      set([{ id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/x'] }], '2', 'one'),
    ]);
    expect(newer.coveredBy).not.toContain(all.fingerprint);
  });

  it('is covered by a recorded selection that hashed and scanned at least what it would, whatever sets it named', () => {
    const xz = builtinIocSets();
    const own = set([
      { id: 'srv', kind: 'file-sha256', sha256: SHA, paths: ['/srv/**'] },
      { id: 'sig', kind: 'byte-signature', hex: 'de ad be ef', paths: ['/usr/lib/**/*.so*'] },
    ]);
    const fewer = compileRules(xz);
    const more = compileRules([...xz, own]);
    expect(fewer.coveredByDefinition(more.definition)).toBe(true);
    expect(more.coveredByDefinition(fewer.definition)).toBe(false);
    expect(fewer.coveredByDefinition(fewer.definition)).toBe(true);
    // Every file hashed covers a file rule that watches no path, but not one whose paths it did not watch
    // (a symlink replacing the file there would be unrecorded), nor a signature it did not scan with.
    const hashAllXz = compileRules(xz, { hashAllFiles: true });
    const md5Anywhere = set([{ id: 'f', kind: 'file-md5', md5: 'b'.repeat(32) }]);
    expect(compileRules([md5Anywhere]).coveredByDefinition(hashAllXz.definition)).toBe(true);
    const md5AtTool = set([{ id: 'f', kind: 'file-md5', md5: 'b'.repeat(32), paths: ['/opt/app/bin/tool'] }]);
    expect(compileRules([...xz, md5AtTool]).coveredByDefinition(hashAllXz.definition)).toBe(false);
    // The same sets' plain selection watches what the hash-all one did: covered, as coveredBy says.
    expect(fewer.coveredByDefinition(hashAllXz.definition)).toBe(true);
    expect(compileRules([own]).coveredByDefinition(hashAllXz.definition)).toBe(false);
    // A hash-all selection is covered only by hash-all facts.
    expect(hashAllXz.coveredByDefinition(more.definition)).toBe(false);
    // The same signature under another pattern, rule id or set is not the same signature.
    const edited = set([
      { id: 'srv', kind: 'file-sha256', sha256: SHA, paths: ['/srv/**'] },
      { id: 'sig', kind: 'byte-signature', hex: 'de ad be ee', paths: ['/usr/lib/**/*.so*'] },
    ]);
    expect(compileRules([...xz, edited]).coveredByDefinition(more.definition)).toBe(false);
    // A stored definition hubcrawl cannot read covers nothing.
    expect(fewer.coveredByDefinition('not json')).toBe(false);
    expect(fewer.coveredByDefinition('{}')).toBe(false);
    // The fingerprint is the sha256 of the definition, so the two cannot drift apart.
    expect(createHash('sha256').update(more.definition).digest('hex')).toBe(more.fingerprint);
  });

  it('names what a recorded selection lacks for these rules, so a warning can say what a match misses', () => {
    const xz = builtinIocSets();
    const fileRule = set([{ id: 'srv', kind: 'file-sha256', sha256: SHA, paths: ['/srv/**'] }], '1', 'files');
    const sigRule = set(
      [{ id: 'sig', kind: 'byte-signature', hex: 'de ad be ef', paths: ['/opt/*.so'] }],
      '1',
      'sigs',
    );
    const plain = compileRules(xz).definition;
    const hashAll = compileRules(xz, { hashAllFiles: true }).definition;
    expect(compileRules(xz).gapsOf(plain)).toEqual([]);
    // A new file rule: fewer files were hashed, unless every file was; then only its paths went unwatched.
    expect(compileRules([...xz, fileRule]).gapsOf(plain)).toEqual(['files']);
    expect(compileRules([...xz, fileRule]).gapsOf(hashAll)).toEqual(['paths']);
    // A new signature is a gap of its own, whatever was hashed (its paths are unwatched too).
    expect(compileRules([...xz, sigRule]).gapsOf(hashAll)).toEqual(['paths', 'signatures']);
    expect(compileRules([...xz, sigRule]).gapsOf(plain)).toEqual(['files', 'signatures']);
    expect(compileRules(xz, { hashAllFiles: true }).gapsOf(plain)).toEqual(['files']);
    expect(compileRules(xz).gapsOf('not json')).toEqual(['unknown']);
    // A stored definition edited by hand: a selector that is no JSON object makes it unknown, not a crash.
    const damaged = (selectors: unknown[]) => JSON.stringify({ ...JSON.parse(hashAll), selectors });
    expect(compileRules([...xz, fileRule]).gapsOf(damaged(['{"paths": [']))).toEqual(['unknown']);
    expect(compileRules([...xz, fileRule]).gapsOf(damaged(['null']))).toEqual(['unknown']);
    expect(compileRules([...xz, fileRule]).gapsOf(damaged([7]))).toEqual(['unknown']);
  });

  it('selects the backdoored library paths with the built-in set and little else', () => {
    const c = compileRules(builtinIocSets());
    expect(c.isCandidate(LIB, 247800)).toBe(true);
    expect(c.isCandidate('/lib/x86_64-linux-gnu/liblzma.so.5.4.1', 150000)).toBe(true); // signatures scan it
    expect(c.signatureRulesFor(LIB)).toHaveLength(5);
    expect(c.isCandidate('/usr/bin/bash', 1265648)).toBe(false);
    expect(c.isCandidate('/usr/share/doc/x/changelog.gz', 8236)).toBe(true); // stage-2 script size prefilter
  });
});
