import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptInputError } from './errors.js';
import { isValidRepositoryPath, MAX_NAME_LENGTH, splitRepositoryName } from './repository-name.js';

describe('splitRepositoryName', () => {
  it('splits a Docker Hub name into its namespace and name', () => {
    expect(splitRepositoryName('bitnami/redis')).toEqual({ namespace: 'bitnami', name: 'redis' });
  });

  it('keeps library as the namespace of an official image', () => {
    expect(splitRepositoryName('library/debian')).toEqual({ namespace: 'library', name: 'debian' });
  });

  it('puts a one-component name under the default namespace when one is given', () => {
    expect(splitRepositoryName('debian', 'library')).toEqual({ namespace: 'library', name: 'debian' });
  });

  it('ignores the default namespace when the path has one', () => {
    expect(splitRepositoryName('bitnami/redis', 'library')).toEqual({ namespace: 'bitnami', name: 'redis' });
  });

  it('gives a one-component name an empty namespace when no default is given', () => {
    expect(splitRepositoryName('plain')).toEqual({ namespace: '', name: 'plain' });
  });

  it('splits a multi-level name at its last slash', () => {
    expect(splitRepositoryName('org/team/sub/tool')).toEqual({ namespace: 'org/team/sub', name: 'tool' });
  });

  it.each([
    ['empty', ''],
    ['a leading slash', '/debian'],
    ['a trailing slash', 'library/'],
    ['a doubled slash', 'library//debian'],
    ['upper case', 'Library/debian'],
    ['a dot-dot component', 'library/../debian'],
    ['a tag', 'library/debian:latest'],
    ['a query', 'library/debian?x=1'],
    ['one character too many', `a/${'b'.repeat(MAX_NAME_LENGTH - 1)}`],
  ])('refuses a path with %s', (_why, path) => {
    expect(() => splitRepositoryName(path)).toThrow(CorruptInputError);
  });

  it('refuses a one-component name whose default namespace breaks the grammar', () => {
    expect(() => splitRepositoryName('debian', 'Docker')).toThrow(CorruptInputError);
  });

  it('accepts a path of exactly the maximum length', () => {
    const path = `a/${'b'.repeat(MAX_NAME_LENGTH - 2)}`;
    expect(splitRepositoryName(path).name).toHaveLength(MAX_NAME_LENGTH - 2);
  });

  it('gives back the path when namespace and name are joined again', () => {
    const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,8}){0,2}$/);
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 6 }), (parts) => {
        const path = parts.join('/');
        expect(isValidRepositoryPath(path)).toBe(true);
        const { namespace, name } = splitRepositoryName(path);
        expect(name).not.toContain('/');
        expect(namespace === '' ? name : `${namespace}/${name}`).toBe(path);
      }),
      { numRuns: 300 },
    );
  });
});
