import type { Database, Statement } from 'better-sqlite3';
import { FatalError } from '../core/errors.js';
import { type IocSetInput, type IocSetRef, nowIso } from './rows.js';
import { writeTransaction } from './sqlite-errors.js';
import { AN_OBJECT, parseStoredJson } from './stored-json.js';

export interface IocSetRow extends IocSetRef {
  title: string | null;
  /** The set exactly as stored (the JSON given to putSets). */
  set: unknown;
  loadedAt: string;
  ruleCount: number;
}

/** IOC sets and their rules, kept whole as JSON so any finding's rule can be looked up by id and version. */
export class IocStore {
  private readonly upsertSet: Statement;
  private readonly deleteRules: Statement;
  private readonly insertRule: Statement;
  private readonly selectAll: Statement;
  private readonly selectOne: Statement;
  private readonly putTx: (sets: readonly IocSetInput[], at: string) => IocSetRef[];

  constructor(db: Database) {
    // An (id, version) pair should never change content; re-loading it replaces the stored copy so the
    // dataset matches the file that was actually used.
    this.upsertSet = db.prepare(
      `INSERT INTO ioc_sets (id, version, title, json, loaded_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id, version) DO UPDATE SET title = excluded.title, json = excluded.json,
         loaded_at = CASE WHEN json = excluded.json THEN loaded_at ELSE excluded.loaded_at END`,
    );
    this.deleteRules = db.prepare('DELETE FROM ioc_rules WHERE ioc_set_id = ? AND ioc_set_version = ?');
    this.insertRule = db.prepare(
      'INSERT INTO ioc_rules (ioc_set_id, ioc_set_version, rule_id, kind, json) VALUES (?, ?, ?, ?, ?)',
    );
    const select = `SELECT s.id, s.version, s.title, s.json, s.loaded_at AS loadedAt,
                           (SELECT count(*) FROM ioc_rules r WHERE r.ioc_set_id = s.id AND r.ioc_set_version = s.version)
                             AS ruleCount
                      FROM ioc_sets s`;
    this.selectAll = db.prepare(`${select} ORDER BY s.id, s.version`);
    this.selectOne = db.prepare(`${select} WHERE s.id = ? AND s.version = ?`);
    this.putTx = writeTransaction(db, (sets: readonly IocSetInput[], at: string) => {
      const changed: IocSetRef[] = [];
      for (const s of sets) {
        const stored = this.selectOne.get(s.id, s.version) as RawSet | undefined;
        if (stored && !hasRules(stored, s.rules)) changed.push({ id: s.id, version: s.version });
        this.upsertSet.run(s.id, s.version, s.title ?? null, JSON.stringify(s), at);
        this.deleteRules.run(s.id, s.version);
        for (const r of s.rules) this.insertRule.run(s.id, s.version, r.id, r.kind, JSON.stringify(r));
      }
      return changed;
    });
  }

  /**
   * Stores IOC sets with their rules in one transaction. Returns the sets the dataset held under the same
   * id and version with other rules (an edited file that kept its version): their stored copy is replaced,
   * so findings cited under that id and version no longer mean one thing, which the caller warns of.
   */
  putSets(sets: readonly IocSetInput[], at: string = nowIso()): IocSetRef[] {
    return this.putTx(sets, at);
  }

  /** Every stored set version. */
  list(): IocSetRow[] {
    return (this.selectAll.all() as RawSet[]).map(toRow);
  }

  /** One set version. */
  get(id: string, version: string): IocSetRow | undefined {
    const raw = this.selectOne.get(id, version) as RawSet | undefined;
    return raw && toRow(raw);
  }
}

interface RawSet {
  id: string;
  version: string;
  title: string | null;
  json: string;
  loadedAt: string;
  ruleCount: number;
}

/** A stored set: the object putSets wrote, with its rules. */
function storedSet(r: RawSet): IocSetInput {
  const where = { row: `ioc_sets row ${r.id} ${r.version}`, column: 'json' };
  const aSet = {
    what: 'IOC set (a JSON object with rules)',
    is: (v: unknown) => AN_OBJECT.is(v) && Array.isArray((v as { rules?: unknown }).rules),
  };
  return parseStoredJson(r.json, where, aSet) as IocSetInput;
}

/**
 * Whether a stored set has these rules. A damaged stored copy cannot say: it counts as other rules, so the
 * caller warns that findings under its id and version may have meant something else, and putSets replaces it.
 */
function hasRules(stored: RawSet, rules: readonly unknown[]): boolean {
  try {
    return rulesKey(storedSet(stored).rules) === rulesKey(rules);
  } catch (err) {
    if (err instanceof FatalError) return false;
    throw err;
  }
}

function toRow(r: RawSet): IocSetRow {
  return {
    id: r.id,
    version: r.version,
    title: r.title,
    set: storedSet(r),
    loadedAt: r.loadedAt,
    ruleCount: r.ruleCount,
  };
}

/** The rules' meaning, whatever their order and the order of their fields in the file. */
function rulesKey(rules: readonly unknown[]): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
              .map(([k, x]) => [k, canonical(x)]),
          )
        : v;
  return rules
    .map((r) => JSON.stringify(canonical(r)))
    .sort()
    .join('\n');
}
