import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstDuplicateKey } from './json-duplicate-keys.js';

describe('firstDuplicateKey', () => {
  it('finds a repeated key with the path of its object and the line it repeats on', () => {
    const text =
      '{\n  "rules": [\n    { "id": "a" },\n    { "id": "b",\n      "sha256": "x",\n      "sha256": "y" }\n  ]\n}';
    expect(firstDuplicateKey(text)).toEqual({ key: 'sha256', objectPath: 'rules[1]', line: 6 });
    expect(firstDuplicateKey('{"id": 1, "id": 2}')).toEqual({ key: 'id', objectPath: '', line: 1 });
  });

  it('reads keys as JSON does: an escaped letter is the same key, a key inside a string is no key', () => {
    expect(firstDuplicateKey('{"a": 1, "\\u0061": 2}')?.key).toBe('a');
    expect(firstDuplicateKey('{"a": "\\", \\"a\\": {[,", "b": ["a", "a"]}')).toBeUndefined();
    // The same key in two objects, or as a value, is no repetition.
    expect(firstDuplicateKey('[{"a": 1}, {"a": {"a": "a"}}]')).toBeUndefined();
  });

  it("agrees with python3's json module on random documents", () => {
    const key = fc.constantFrom('a', 'b', 'sha256', '\\u0061', 'a\\"', '{', ',');
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom('1', 'null', '"a"', '"}"', '"\\\\"'),
        fc.array(tie('tree'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
        fc
          .array(fc.tuple(key, tie('tree')), { maxLength: 4 })
          .map((pairs) => `{${pairs.map(([k, v]) => `"${k}":\n${v}`).join(', ')}}`),
      ),
    }));
    const docs = fc.sample(tree, { numRuns: 400, seed: 20261207 }) as string[];
    // python3 as the oracle: object_pairs_hook sees every pair, duplicates included.
    const script = `
import json, sys
def hook(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError('dup')
    return dict(pairs)
for line in sys.stdin:
    try:
        json.loads(json.loads(line), object_pairs_hook=hook)
        print('ok')
    except ValueError:
        print('dup')
`;
    const input = docs.map((d) => JSON.stringify(d)).join('\n');
    const verdicts = execFileSync('python3', ['-c', script], { input, encoding: 'utf8' }).trim().split('\n');
    expect(verdicts).toHaveLength(docs.length);
    expect(verdicts.filter((v) => v === 'dup').length).toBeGreaterThan(20);
    docs.forEach((doc, i) => {
      JSON.parse(doc); // every sample is JSON
      expect(firstDuplicateKey(doc) === undefined ? 'ok' : 'dup', doc).toBe(verdicts[i]);
    });
  });
});
