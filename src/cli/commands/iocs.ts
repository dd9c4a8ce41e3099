import { builtinIocSets } from '../../analyzer/iocs/builtin.js';
import type { IocSet } from '../../analyzer/iocs/schema.js';
import { iocSetsFor, loadUserIocSet } from '../context.js';
import { EXIT } from '../exit.js';
import { toTable } from '../output.js';
import { counted } from '../plural.js';

function summary(set: IocSet, source: string) {
  const kinds = new Map<string, number>();
  for (const r of set.rules) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
  return {
    id: set.id,
    version: set.version,
    rules: set.rules.length,
    kinds: [...kinds].map(([k, n]) => `${k}:${n}`).join(' '),
    source,
  };
}

/** `hubcrawl iocs list`: the built-in sets and any --ioc files, one line each. */
export async function iocsListCommand(opts: { ioc?: string[]; builtinIocs?: boolean }): Promise<number> {
  const noBuiltinIocs = opts.builtinIocs === false;
  // The sets a crawl with these files would load, refused as it would refuse them (a shared id, a file
  // posing as a built-in set): a list that shows what a crawl then rejects would mislead.
  await iocSetsFor({ noBuiltinIocs, iocFiles: opts.ioc ?? [] });
  const rows = noBuiltinIocs ? [] : builtinIocSets().map((s) => summary(s, 'built-in'));
  for (const file of opts.ioc ?? []) rows.push(summary(await loadUserIocSet(file), file));
  process.stdout.write(toTable(['id', 'version', 'rules', 'kinds', 'source'], rows, 100));
  return EXIT.ok;
}

/**
 * `hubcrawl iocs check FILE`: validates a set as crawl, scan and rematch load it (loadUserIocSet); errors
 * name the file and field (exit 2).
 */
export async function iocsCheckCommand(file: string): Promise<number> {
  const set = await loadUserIocSet(file);
  const s = summary(set, file);
  process.stdout.write(
    `${file}: valid IOC set ${s.id}@${s.version} with ${counted(s.rules, 'rule')} (${s.kinds})\n`,
  );
  // Its id is taken by a built-in set, so loaded beside it the two would share an id (refused); without
  // the built-in sets it loads (a set with the id, version and rules of a built-in one is that set).
  if (builtinIocSets().some((b) => b.id === set.id)) {
    process.stderr.write(
      `hubcrawl: ${file} has the id of a built-in set, ${set.id}: crawl, scan and rematch load it only with --no-builtin-iocs\n`,
    );
  }
  return EXIT.ok;
}
