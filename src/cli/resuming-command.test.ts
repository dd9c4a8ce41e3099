import { describe, expect, it } from 'vitest';
import { resumingCommand } from './resuming-command.js';

describe('resumingCommand', () => {
  it("writes a crawl's seeds as flags, each a shell word, and leaves default settings out", () => {
    const seeds = {
      images: [],
      repos: ['debian'],
      searches: ['xz utils'],
      catalogs: ['http://127.0.0.1:5000/'],
    };
    const stored = {
      command: 'crawl',
      seeds,
      filters: { platforms: [] },
      hubApiUrl: 'https://hub.docker.com',
    };
    expect(resumingCommand(stored, '/data/my study.sqlite').command).toBe(
      "hubcrawl crawl --db '/data/my study.sqlite' --repo debian --search 'xz utils' --catalog http://127.0.0.1:5000/",
    );
  });

  it('writes every setting a run resumes only with: filters, IOC sets, what is hashed, the API and mirror', () => {
    const stored = {
      seeds: { images: ['debian:sid-20240311'], files: ['/s/seeds.txt'] },
      filters: {
        tags: '^sid-',
        pushedAfter: '2024-02-01',
        pushedBefore: '2024-04-01',
        platforms: ['linux/amd64', 'linux/arm64'],
        maxTagsPerRepository: 5,
      },
      iocFiles: ['/s/mine.json'],
      noBuiltinIocs: true,
      hashAllFiles: true,
      debianOnly: true,
      hubApiUrl: 'http://127.0.0.1:9000/',
      registryMirror: 'http://127.0.0.1:5001/',
      // Not study settings: a resumed run may change them.
      maxPulls: 10,
      concurrency: 8,
    };
    expect(resumingCommand(stored, 'd.sqlite').command.split(' ')).toEqual(
      [
        ...[
          'hubcrawl',
          'crawl',
          '--db',
          'd.sqlite',
          '--image',
          'debian:sid-20240311',
          '--seeds',
          '/s/seeds.txt',
        ],
        ...['--tags', '^sid-', '--pushed-after', '2024-02-01', '--pushed-before', '2024-04-01'],
        ...['--platform', 'linux/amd64', '--platform', 'linux/arm64', '--max-tags', '5'],
        ...['--ioc', '/s/mine.json', '--no-builtin-iocs', '--hash-all-files', '--debian-only'],
        ...['--hub-api', 'http://127.0.0.1:9000/', '--registry-mirror', 'http://127.0.0.1:5001/'],
      ].map((w) => (w === '^sid-' ? "'^sid-'" : w)),
    );
  });

  it("gives a scan's references as its arguments, after its other settings", () => {
    const images = Array.from({ length: 10 }, (_, i) => `127.0.0.1:5000/demo/app:${i}`);
    const stored = { command: 'scan', seeds: { images }, filters: { platforms: ['linux/amd64'] } };
    expect(resumingCommand(stored, 'd.sqlite')).toEqual({
      command: `hubcrawl scan --db d.sqlite --platform linux/amd64 ${images.join(' ')}`,
      fromConfigFile: [],
    });
  });

  it("names the filters a scan's config file set that no scan flag gives, and writes none of them as flags", () => {
    const stored = {
      command: 'scan',
      seeds: { images: ['a/b:1'] },
      filters: { tags: '^v', maxTagsPerRepository: 3, platforms: [] },
    };
    expect(resumingCommand(stored, 'd.sqlite')).toEqual({
      command: 'hubcrawl scan --db d.sqlite a/b:1',
      fromConfigFile: ['filters.tags', 'filters.maxTagsPerRepository'],
    });
  });
});
