import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, openDatabase } from '../open.js';

/**
 * A fresh dataset for one db unit test: the real migrations on a real file (`d.db`), opened read-write
 * as a crawl opens it, in a temp folder of its own that a test may put other files in (an older
 * schema's migrations, a second dataset). Open one in beforeEach and `remove()` it in afterEach, so no
 * test sees another's rows; the folder's prefix says which test file left it behind if one ever does.
 * It is the unit-test kin of test/helpers' `tempDir` and `makeWorkspace` (same create-then-remove
 * contract), and `path` is what test/helpers/dataset.ts's readers take.
 */
export interface TempDataset {
  dir: string;
  path: string;
  db: Database;
  /** Closes `db` and deletes `dir` with everything in it. */
  remove(): void;
}

/** Opens a migrated dataset at `<tmpdir>/<prefix>XXXXXX/d.db`. */
export function openTempDataset(prefix: string): TempDataset {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const deleteDir = () => rmSync(dir, { recursive: true, force: true });
  const path = join(dir, 'd.db');
  let db: Database;
  try {
    db = openDatabase(path);
  } catch (err) {
    deleteDir(); // a failed migration must not leave a folder per test behind
    throw err;
  }
  return {
    dir,
    path,
    db,
    remove: () => {
      db.close();
      deleteDir();
    },
  };
}
