import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { formatIssuePath, loadIocSetFile, parseIocSet } from './load.js';

const SHA = 'a'.repeat(64);
const MD5 = 'b'.repeat(32);
const base = { id: 'my-set', version: '1', title: 'Mine', references: ['https://example.org/advisory'] };
const withRules = (rules: unknown[]) => ({ ...base, rules });
const errorOf = (json: unknown): ConfigError => {
  try {
    parseIocSet(json, 'iocs/x.json');
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected parseIocSet to refuse the set');
};

describe('parseIocSet', () => {
  it('accepts one rule of every kind', () => {
    const set = parseIocSet(
      withRules([
        { id: 'a', kind: 'file-sha256', sha256: SHA, paths: ['/usr/lib/**/x.so*'], size: 10, source: 's' },
        { id: 'b', kind: 'file-md5', md5: MD5 },
        {
          id: 'c',
          kind: 'dpkg-version',
          package: 'liblzma5',
          versions: ['5.6.1-1'],
          architectures: ['amd64'],
        },
        {
          id: 'd',
          kind: 'dpkg-version',
          package: 'xz-utils',
          introduced: '5.5.1alpha-0.1',
          fixed: '5.6.1+really5.4.5-1',
        },
        { id: 'e', kind: 'byte-signature', hex: '48 8d ?? 24', paths: ['/**/x.so*'], elfOnly: true },
      ]),
      'iocs/x.json',
    );
    expect(set.rules.map((r) => r.kind)).toEqual([
      'file-sha256',
      'file-md5',
      'dpkg-version',
      'dpkg-version',
      'byte-signature',
    ]);
  });

  it('names the file and the field of a bad hash', () => {
    const err = errorOf(
      withRules([
        { id: 'a', kind: 'file-md5', md5: MD5 },
        { id: 'b', kind: 'file-sha256', sha256: 'ABC' },
      ]),
    );
    expect(err.message).toBe('iocs/x.json: rules[1].sha256: expected 64 hex characters');
    expect(err.code).toBe('CONFIG');
  });

  it('takes a hash in uppercase, as Windows tools and many reports write it, and keeps it lowercase', () => {
    const sha256 = 'ab'.repeat(32);
    const set = parseIocSet(
      withRules([
        { id: 'a', kind: 'file-md5', md5: MD5.toUpperCase() },
        { id: 'b', kind: 'file-sha256', sha256: sha256.toUpperCase() },
      ]),
      'iocs/x.json',
    );
    expect(set.rules).toMatchObject([{ md5: MD5 }, { sha256 }]);
  });

  it('refuses unknown fields, naming them', () => {
    expect(errorOf(withRules([{ id: 'a', kind: 'file-md5', md5: MD5, pathz: ['/x'] }])).message).toBe(
      'iocs/x.json: rules[0]: unknown field "pathz"',
    );
    expect(errorOf({ ...withRules([{ id: 'a', kind: 'file-md5', md5: MD5 }]), extra: 1 }).message).toBe(
      'iocs/x.json: (top level): unknown field "extra"',
    );
  });

  it('refuses an unknown kind at the kind field, naming it and the kinds there are', () => {
    expect(errorOf(withRules([{ id: 'a', kind: 'file-sha1' }])).message).toBe(
      'iocs/x.json: rules[0].kind: unknown rule kind "file-sha1"; expected one of file-sha256, file-md5, dpkg-version, byte-signature',
    );
    expect(errorOf(withRules([{ id: 'a', kind: 5 }])).message).toMatch(
      /^iocs\/x\.json: rules\[0\]\.kind: unknown rule kind 5; expected one of file-sha256, /,
    );
    expect(errorOf(withRules([{ id: 'a', md5: MD5 }])).message).toMatch(
      /^iocs\/x\.json: rules\[0\]\.kind: no rule kind given; expected one of file-sha256, /,
    );
  });

  it('insists on versions or introduced/fixed for dpkg-version rules, not both', () => {
    expect(errorOf(withRules([{ id: 'a', kind: 'dpkg-version', package: 'x1' }])).message).toMatch(
      /rules\[0\]: expected "versions" or "introduced"\/"fixed"/,
    );
    expect(
      errorOf(withRules([{ id: 'a', kind: 'dpkg-version', package: 'x1', versions: ['1'], fixed: '2' }]))
        .message,
    ).toMatch(/not both/);
    expect(
      errorOf(withRules([{ id: 'a', kind: 'dpkg-version', package: 'x1', versions: ['one'] }])).message,
    ).toBe('iocs/x.json: rules[0].versions[0]: expected a Debian version string');
  });

  it('refuses a package name Debian policy does not allow, saying what it allows', () => {
    const rule = (name: string) =>
      withRules([{ id: 'a', kind: 'dpkg-version', package: name, versions: ['1'] }]);
    expect(errorOf(rule('x')).message).toBe(
      'iocs/x.json: rules[0].package: "x" is not a Debian package name: Debian policy (5.6.7) makes one at least two characters long, of lowercase letters (a-z), digits, "+", "-" and "." only, starting with a letter or digit',
    );
    for (const name of ['LibLzma5', 'lib_lzma', '-xz', '.xz', 'xz utils']) {
      expect(errorOf(rule(name)).message).toContain(
        `rules[0].package: "${name}" is not a Debian package name`,
      );
    }
    for (const name of ['x1', '0ad', 'g++', 'libstdc++6', 'xz-utils', 'python3.11']) {
      expect(() => parseIocSet(rule(name), 'iocs/x.json')).not.toThrow();
    }
  });

  it('refuses a range whose fixed version is not after its introduced one, in Debian order', () => {
    const range = (introduced: string, fixed: string) =>
      withRules([{ id: 'a', kind: 'dpkg-version', package: 'x1', introduced, fixed }]);
    expect(errorOf(range('5.6.0', '5.4.5')).message).toBe(
      'iocs/x.json: rules[0].fixed: "fixed" (5.4.5) must be a later Debian version than "introduced" (5.6.0); the range holds no version',
    );
    expect(errorOf(range('1.0', '1.0')).message).toMatch(/the range holds no version/);
    // Debian order, not text order: ~ sorts before the empty string, so 5.6.0~rc1 comes before 5.6.0.
    expect(() => parseIocSet(range('5.6.0~rc1', '5.6.0'), 'x')).not.toThrow();
    expect(() => parseIocSet(range('5.5.1alpha-0.1', '5.6.1+really5.4.5-1'), 'x')).not.toThrow();
  });

  it('refuses an architecture named as uname or Docker names it, saying what dpkg calls it', () => {
    const rule = (arch: string) => ({
      id: `a-${arch}`,
      kind: 'dpkg-version',
      package: 'x1',
      versions: ['1'],
      architectures: [arch],
    });
    expect(errorOf(withRules([rule('x86_64')])).message).toBe(
      'iocs/x.json: rules[0].architectures[0]: "x86_64" is not what dpkg calls an architecture; its Architecture: field says "amd64"',
    );
    expect(errorOf(withRules([rule('arm')])).message).toMatch(
      /its Architecture: field says "armhf" or "armel"$/,
    );
    expect(errorOf(withRules([rule('AMD64')])).message).toMatch(
      /rules\[0\]\.architectures\[0\]: expected a Debian architecture name as dpkg writes it/,
    );
    expect(() => parseIocSet(withRules([rule('arm64'), rule('all')]), 'iocs/x.json')).not.toThrow();
  });

  it('refuses bad hex patterns and relative path globs at their field', () => {
    expect(
      errorOf(withRules([{ id: 'a', kind: 'byte-signature', hex: '4', paths: ['/x'] }])).message,
    ).toMatch(/^iocs\/x\.json: rules\[0\]\.hex: expected an even number/);
    expect(
      errorOf(withRules([{ id: 'a', kind: 'byte-signature', hex: '41', paths: ['x'] }])).message,
    ).toMatch(/^iocs\/x\.json: rules\[0\]\.paths\[0\]: a path glob must be absolute/);
    expect(errorOf(withRules([{ id: 'a', kind: 'byte-signature', hex: '41' }])).message).toMatch(
      /rules\[0\]\.paths/,
    );
  });

  it('refuses path globs that normalized stored paths can never match, naming file, rule and glob', () => {
    const rules = [
      { id: 'ok', kind: 'file-md5', md5: MD5, paths: ['/usr/lib/x'] },
      { id: 'b', kind: 'file-sha256', sha256: SHA, paths: ['/usr/lib/x', '/usr/lib/'] },
    ];
    expect(errorOf(withRules(rules)).message).toMatch(
      /^iocs\/x\.json: rules\[1\]\.paths\[1\]: the path glob "\/usr\/lib\/" ends with "\/"/,
    );
    for (const glob of ['/usr//lib/x', '/usr/./x', '/usr/lib/../x']) {
      const message = errorOf(withRules([{ id: 'a', kind: 'file-md5', md5: MD5, paths: [glob] }])).message;
      expect(message).toContain('iocs/x.json: rules[0].paths[0]: ');
      expect(message).toContain(`"${glob}"`);
      expect(message).toContain('could never match');
    }
  });

  it('refuses duplicate rule ids, naming both positions', () => {
    const err = errorOf(
      withRules([
        { id: 'a', kind: 'file-md5', md5: MD5 },
        { id: 'a', kind: 'file-sha256', sha256: SHA },
      ]),
    );
    expect(err.message).toMatch(
      /^iocs\/x\.json: rules\[1\]\.id: duplicate rule id "a" \(first used at rules\[0\]\)/,
    );
  });

  it('refuses bad references and an empty rule list, reporting every problem', () => {
    const err = errorOf({ ...base, references: ['not a url'], rules: [] });
    expect(err.message).toMatch(/^iocs\/x\.json: references\[0\]: /);
    expect(err.message).toMatch(/rules: expected at least one rule/);
  });
});

describe('loadIocSetFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-iocs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a valid file', async () => {
    const path = join(dir, 'ok.json');
    writeFileSync(path, JSON.stringify(withRules([{ id: 'a', kind: 'file-md5', md5: MD5 }])));
    expect((await loadIocSetFile(path)).id).toBe('my-set');
  });

  it('names the file when it is not JSON or does not exist', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "id": ');
    await expect(loadIocSetFile(bad)).rejects.toThrow(new RegExp(`^${bad}: not valid JSON`));
    await expect(loadIocSetFile(join(dir, 'missing.json'))).rejects.toBeInstanceOf(ConfigError);
    await expect(loadIocSetFile(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: cannot read/);
  });

  it('places a JSON syntax error at the line and column of the file, keeping the reason', async () => {
    const file = join(dir, 'comma.json');
    // A byte order mark, CRLF lines and a trailing comma, the `}` after it the error.
    writeFileSync(file, '\uFEFF{\r\n  "id": "my-set",\r\n  "title": "Mine",\r\n  }\r\n');
    await expect(loadIocSetFile(file)).rejects.toThrow(
      `${file}: not valid JSON (Expected double-quoted property name in JSON at line 4, column 3)`,
    );
  });

  it('names the errno of a file it cannot read, and what to do', async () => {
    const missing = join(dir, 'missing.json');
    await expect(loadIocSetFile(missing)).rejects.toThrow(
      `${missing}: cannot read the IOC set file (ENOENT: no such file or directory); check the path`,
    );
    const folder = mkdtempSync(join(dir, 'a-folder-'));
    await expect(loadIocSetFile(folder)).rejects.toThrow(
      `${folder}: cannot read the IOC set file (EISDIR: illegal operation on a directory); name the JSON file of the set, not a folder`,
    );
  });

  it('refuses a key given twice in one object, which JSON.parse would keep only the last of', async () => {
    const file = join(dir, 'twice.json');
    const rule = `{ "id": "so", "kind": "file-sha256",\n  "sha256": "${SHA}",\n  "sha256": "${'c'.repeat(64)}" }`;
    writeFileSync(
      file,
      `{ "id": "my-set", "version": "1", "title": "Mine", "references": [],\n"rules": [${rule}] }`,
    );
    await expect(loadIocSetFile(file)).rejects.toThrow(
      `${file}: rules[0] holds the key "sha256" twice (again on line 4); JSON keeps only the last value, so the other would be dropped without a word: keep one`,
    );
  });

  it('refuses bytes that are not UTF-8, naming the file and the line, and accepts the same text in UTF-8', async () => {
    const glob = (g: string) =>
      JSON.stringify(withRules([{ id: 'a', kind: 'file-md5', md5: MD5, paths: [g] }]), null, 2);
    const latin1 = join(dir, 'latin1.json');
    writeFileSync(latin1, Buffer.from(glob('/opt/café/*'), 'latin1'));
    const line =
      glob('/opt/café/*')
        .split('\n')
        .findIndex((l) => l.includes('café')) + 1;
    await expect(loadIocSetFile(latin1)).rejects.toThrow(
      `${latin1}: not UTF-8 text (line ${line} holds a byte that is not); save the file as UTF-8`,
    );
    const utf8 = join(dir, 'utf8.json');
    writeFileSync(utf8, glob('/opt/café/*'));
    const set = await loadIocSetFile(utf8);
    expect(set.rules[0]).toMatchObject({ paths: ['/opt/café/*'] });
  });

  it('names the file path in validation errors', async () => {
    const path = join(dir, 'invalid.json');
    writeFileSync(path, JSON.stringify(withRules([{ id: 'a', kind: 'file-md5', md5: 'XYZ' }])));
    await expect(loadIocSetFile(path)).rejects.toThrow(`${path}: rules[0].md5: expected 32 hex characters`);
  });
});

describe('formatIssuePath', () => {
  it('renders array indices in brackets and keys with dots', () => {
    expect(formatIssuePath(['rules', 3, 'paths', 0])).toBe('rules[3].paths[0]');
    expect(formatIssuePath([])).toBe('(top level)');
  });
});
