/**
 * `--help` is the reference a user reads first: every command answers it with exit 0, and every flag
 * the README documents appears in the help of the command it belongs to (README parsed, not retyped).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCliOnce, ROOT, removeTempDirs, runCli } from './helpers/cli.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function section(heading: string): string {
  const start = README.indexOf(`${heading}\n`);
  if (start < 0) throw new Error(`README has no "${heading}" section`);
  const next = README.indexOf('\n#', start + heading.length);
  return README.slice(start, next < 0 ? undefined : next);
}

const flagsIn = (text: string): string[] => [...new Set(text.match(/--[a-z][a-z-]*/g) ?? [])];

/** The README's command synopsis: command → usage text (`hubcrawl report [--db FILE] …`). */
function synopsis(): Map<string, string> {
  const block = /```\n([\s\S]*?)```/.exec(section('## Commands'))?.[1] ?? '';
  const out = new Map<string, string>();
  for (const line of block.split('\n')) {
    const m = /^hubcrawl (\w+)\s+(.*?)(\s{2,}.*)?$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out.set(m[1], m[2]);
  }
  return out;
}

/** Flags the README documents for `crawl`: its synopsis, the seeds/filters table, "Other options". */
function crawlFlags(): string[] {
  const seeds = section('### Seeds and filters (`crawl`)');
  const table = seeds
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|')[1] ?? '');
  const other = /Other options:([\s\S]*?)(\n\n|$)/.exec(seeds)?.[1] ?? '';
  return flagsIn([synopsis().get('crawl') ?? '', ...table, other].join('\n'));
}

/** `--flag` as a whole option name (not the start of a longer one). */
const mentions = (help: string, flag: string) => new RegExp(`${flag}(?![a-z-])`).test(help);

const COMMANDS = ['crawl', 'scan', 'report', 'query', 'rematch', 'stats', 'export', 'iocs'];
const help = new Map<string, { code: number | null; stdout: string }>();

beforeAll(async () => {
  await buildCliOnce();
  const runs = [[], ...COMMANDS.map((c) => [c]), ['iocs', 'list'], ['iocs', 'check']];
  const results = await Promise.all(runs.map((args) => runCli([...args, '--help'])));
  for (const [i, args] of runs.entries()) help.set(args.join(' '), results[i]!);
}, 180_000);

afterAll(() => {
  removeTempDirs();
});

describe('hubcrawl --help', () => {
  it('exits 0 and lists every command of the README synopsis', () => {
    const top = help.get('')!;
    expect(top.code).toBe(0);
    expect([...synopsis().keys()].sort()).toEqual([...COMMANDS].sort());
    for (const c of COMMANDS) expect(top.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });

  it('wraps its description as one paragraph (no hard line break mid-sentence)', () => {
    const paragraph = help.get('')!.stdout.split('\n\n')[1]!.split('\n');
    expect(paragraph.length).toBeGreaterThan(1);
    // Commander wraps at 80 columns off a terminal: every line but the last is nearly full.
    expect(paragraph.slice(0, -1).filter((l) => l.length < 60)).toEqual([]);
  });

  it.each([...COMMANDS, 'iocs list', 'iocs check'])('%s --help exits 0 with a usage line', (cmd) => {
    const h = help.get(cmd)!;
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(new RegExp(`^Usage: hubcrawl ${cmd}\\b`));
  });

  it('crawl --help lists every flag the README documents for crawl', () => {
    const flags = crawlFlags();
    // The table and the paragraph were found (a README reshuffle must not make this test vacuous).
    expect(flags).toEqual(
      expect.arrayContaining(['--image', '--catalog', '--platform', '--max-pulls', '--quiet']),
    );
    expect(flags.filter((f) => !mentions(help.get('crawl')!.stdout, f))).toEqual([]);
  });

  it.each(COMMANDS.filter((c) => c !== 'crawl' && c !== 'iocs'))(
    '%s --help lists every flag of its README synopsis, and every --format choice',
    (cmd) => {
      const usage = synopsis().get(cmd) ?? '';
      const out = help.get(cmd)!.stdout;
      expect(flagsIn(usage).filter((f) => !mentions(out, f))).toEqual([]);
      const choices = /--format ([a-z|]+)/.exec(usage)?.[1]?.split('|') ?? [];
      expect(choices.filter((c) => !out.includes(`"${c}"`))).toEqual([]);
    },
  );

  it('iocs --help lists the list and check subcommands of the README synopsis', () => {
    const usage = synopsis().get('iocs') ?? '';
    expect(usage).toBe('list [--ioc FILE]... [--no-builtin-iocs] | check FILE');
    expect(help.get('iocs')!.stdout).toMatch(/^ {2}list\b/m);
    expect(help.get('iocs')!.stdout).toMatch(/^ {2}check\b/m);
  });

  // The converse: a flag the synopsis leaves out is one a newcomer never learns of. --log-level and
  // --quiet (every dataset command's) are said once below the synopsis; scan's crawl options with crawl's.
  it.each([...COMMANDS.filter((c) => c !== 'iocs'), 'iocs list', 'iocs check'])(
    'every flag of %s --help is in the README synopsis',
    (cmd) => {
      const [name, sub] = cmd.split(' ') as [string, string | undefined];
      let usage = synopsis().get(name) ?? '';
      if (sub) usage = usage.split(' | ').find((u) => u.startsWith(`${sub} `) || u === sub) ?? '';
      const documented = new Set([
        ...flagsIn(usage),
        '--help',
        ...(name === 'iocs' ? [] : ['--log-level', '--quiet']),
        ...(name === 'crawl' || name === 'scan' ? crawlFlags() : []),
      ]);
      const options = help.get(cmd)!.stdout.match(/^ {2}(?:-\w, )?--[a-z][a-z-]*/gm) ?? [];
      const flags = options.map((o) => o.replace(/^ {2}(?:-\w, )?/, ''));
      expect(flags.length).toBeGreaterThan(0);
      expect(flags.filter((f) => !documented.has(f))).toEqual([]);
    },
  );
});
