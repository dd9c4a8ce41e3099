import { describe, expect, it } from 'vitest';
import { AuthError, CorruptInputError, PermanentError, RetryableError } from '../core/errors.js';
import { fromAnyRepository, refusedByRepository } from './fallback.js';

describe('repository fallback', () => {
  it('counts 401, 403, 404 and refused credentials as a refusal by the repository, nothing else', () => {
    for (const status of [401, 403, 404])
      expect(refusedByRepository(new PermanentError('x', { status }))).toBe(true);
    expect(refusedByRepository(new AuthError('x'))).toBe(true);
    expect(refusedByRepository(new PermanentError('x', { status: 400 }))).toBe(false);
    expect(refusedByRepository(new RetryableError('x'))).toBe(false);
    expect(refusedByRepository(new CorruptInputError('x'))).toBe(false);
  });

  it('tries the other repositories holding the digest, each once, after the first refuses', async () => {
    const tried: string[] = [];
    const got = await fromAnyRepository(
      'a',
      () => ['a', 'b', 'c'],
      async (r) => {
        tried.push(r);
        if (r !== 'c') throw new PermanentError('gone', { status: 404 });
        return r;
      },
    );
    expect(got).toBe('c');
    expect(tried).toEqual(['a', 'b', 'c']);
  });

  it('rethrows the first refusal when no repository serves the digest', async () => {
    const first = new PermanentError('first', { status: 401 });
    await expect(
      fromAnyRepository(
        'a',
        () => ['b'],
        async (r) => {
          throw r === 'a' ? first : new PermanentError('second', { status: 404 });
        },
      ),
    ).rejects.toBe(first);
  });

  it('does not try elsewhere when the content itself is bad', async () => {
    const tried: string[] = [];
    await expect(
      fromAnyRepository(
        'a',
        () => ['b'],
        async (r) => {
          tried.push(r);
          throw new CorruptInputError('bad bytes');
        },
      ),
    ).rejects.toThrow('bad bytes');
    expect(tried).toEqual(['a']);
  });
});
