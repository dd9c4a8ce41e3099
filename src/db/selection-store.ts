/**
 * The candidate selections a dataset's layers were analyzed under, by fingerprint with what each chose
 * (migration 0005), so that the selections whose facts answer the current rules can be told apart from
 * those that cannot (CompiledRules.coveredByDefinition).
 */
import type { Database, Statement } from 'better-sqlite3';
import type { CompiledRules } from '../analyzer/iocs/compile.js';
import { guardWrite } from './sqlite-errors.js';

export class SelectionStore {
  private readonly insert: Statement;
  private readonly selectAll: Statement;
  private readonly selectUnrecorded: Statement;

  constructor(private readonly db: Database) {
    this.insert = db.prepare('INSERT OR IGNORE INTO selections (fingerprint, definition_json) VALUES (?, ?)');
    this.selectAll = db.prepare('SELECT fingerprint, definition_json AS definition FROM selections');
    this.selectUnrecorded = db
      .prepare(
        `SELECT DISTINCT selection FROM layers
          WHERE selection IS NOT NULL AND selection NOT IN (SELECT fingerprint FROM selections)`,
      )
      .pluck();
  }

  /** Records the selection `rules` make (a no-op when the dataset knows it). */
  remember(rules: Pick<CompiledRules, 'fingerprint' | 'definition'>): void {
    guardWrite(this.db, () => this.insert.run(rules.fingerprint, rules.definition));
  }

  /** The recorded definition JSON of each selection, by fingerprint. */
  definitions(): Map<string, string> {
    const known = this.selectAll.all() as Array<{ fingerprint: string; definition: string }>;
    return new Map(known.map((s) => [s.fingerprint, s.definition]));
  }

  /** Fingerprints that layers carry with no recorded definition (layers analyzed before schema 5). */
  unrecorded(): string[] {
    return this.selectUnrecorded.all() as string[];
  }

  /**
   * The selections whose layers need no new analysis for `rules`: those of `rules.coveredBy`, and every
   * recorded one whose definition covers them (a superset of their selectors and signatures).
   */
  covering(rules: Pick<CompiledRules, 'coveredBy' | 'coveredByDefinition'>): string[] {
    const known = this.selectAll.all() as Array<{ fingerprint: string; definition: string }>;
    const covering = known.filter((s) => rules.coveredByDefinition(s.definition)).map((s) => s.fingerprint);
    return [...new Set([...rules.coveredBy, ...covering])];
  }
}
