import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuoted } from './shell.js';

describe('shellQuoted', () => {
  const words = [
    '/srv/study/hubcrawl.sqlite',
    '--log-level=warn',
    'http://127.0.0.1:5000',
    "/shelf/it's here.sqlite",
    'SELECT repository, tags FROM affected_images ORDER BY repository',
    "SELECT * FROM t WHERE name = 'x' AND v LIKE '%$HOME%' -- `date` ; | > *",
    '~',
    '',
  ];

  it('leaves a word no shell reads specially as it is', () => {
    expect(shellQuoted('/srv/study/hubcrawl.sqlite')).toBe('/srv/study/hubcrawl.sqlite');
    expect(shellQuoted('--log-level=warn')).toBe('--log-level=warn');
  });

  it('gives sh back every word as it was, one argument each', () => {
    const r = spawnSync('sh', ['-c', `printf '%s\\0' ${words.map(shellQuoted).join(' ')}`], {
      encoding: 'utf8',
    });
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
  });
});
