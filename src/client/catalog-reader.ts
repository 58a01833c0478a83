/**
 * CatalogReader: the catalog reads of {@link FilestoreClient} without Temporal — what a reader that
 * never starts a mutation needs (the CLI's `ls`, `stat`, `journal ls`, `mount ls`; a dashboard).
 * It loads only the catalog (drizzle and pg): no Temporal client, no worker, no backends, so it
 * opens in a fraction of the time a FilestoreClient takes.
 *
 * ```ts
 * const reader = CatalogReader.open();                 // the catalog named by the environment
 * const page = await reader.listPage('docs', 'reports');
 * await reader.close();
 * ```
 */
import { openCatalog, type Db } from '../../db/client';
import { findJournalEntry, listJournalEntries, type JournalQuery } from '../catalog/journal';
import { listNodePage, MAX_PAGE_SIZE, type ListPageOptions, type NodePage } from '../catalog/listing';
import { getMount, listMounts } from '../catalog/mounts';
import { nodeAt } from '../catalog/nodes';
import type { JournalRow, MountRow, NodeRow } from '../catalog/types';
import { loadConfig, type Config } from '../config';
import { InvalidRequestError } from '../errors';
import { normalizeMountPath } from '../paths';

export class CatalogReader {
  /** @param close - what {@link CatalogReader.close} runs (nothing for a borrowed `db`). */
  constructor(
    readonly db: Db,
    private readonly closeCatalog: () => Promise<void> = async () => undefined,
  ) {}

  /** Opens its own small pool on `config.databaseUrl` (default: the environment's). */
  static open(config: Pick<Config, 'databaseUrl'> = loadConfig()): CatalogReader {
    const catalog = openCatalog(config.databaseUrl, { max: 2 });
    return new CatalogReader(catalog.db, () => catalog.close());
  }

  close(): Promise<void> {
    return this.closeCatalog();
  }

  async getNode(mountId: string, nodePath: string): Promise<NodeRow | null> {
    const p = normalizeMountPath(nodePath, { allowRoot: true });
    return nodeAt(this.db, mountId, p);
  }

  /**
   * Live (with `includeDeleted`, all) children of a directory in the catalog, or its whole subtree
   * with `recursive`, in path order. Reads page by page and drops nothing: without `limit` every
   * node comes back, with it the first `limit`. For directories of unknown size prefer
   * {@link CatalogReader.listPage}.
   */
  async listNodes(mountId: string, dirPath: string, opts: { recursive?: boolean; includeDeleted?: boolean; limit?: number } = {}): Promise<NodeRow[]> {
    if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) {
      throw new InvalidRequestError(`limit must be a non-negative integer, got ${String(opts.limit)}`);
    }
    const out: NodeRow[] = [];
    let cursor: string | null = null;
    while (opts.limit === undefined || out.length < opts.limit) {
      const limit = opts.limit === undefined ? MAX_PAGE_SIZE : Math.min(MAX_PAGE_SIZE, opts.limit - out.length);
      const page: NodePage = await this.listPage(mountId, dirPath, { recursive: opts.recursive, includeDeleted: opts.includeDeleted, limit, cursor });
      out.push(...page.nodes);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  /**
   * One page of a directory listing (direct children through the parent index, or the subtree
   * with `recursive`), in path order. Pass `nextCursor` back as `cursor` for the next page; a
   * page is full (`limit` nodes) whenever `nextCursor` is set, and null marks the end.
   */
  async listPage(mountId: string, dirPath: string, opts: ListPageOptions = {}): Promise<NodePage> {
    await getMount(this.db, mountId);
    return listNodePage(this.db, mountId, normalizeMountPath(dirPath, { allowRoot: true }), opts);
  }

  async listJournal(q: JournalQuery = {}): Promise<JournalRow[]> {
    return listJournalEntries(this.db, q);
  }

  async getJournalEntry(idOrKey: string): Promise<JournalRow | null> {
    return findJournalEntry(this.db, idOrKey);
  }

  listMounts(): Promise<MountRow[]> {
    return listMounts(this.db);
  }

  /** The mount `id`; UNKNOWN_MOUNT when there is none. */
  getMount(id: string): Promise<MountRow> {
    return getMount(this.db, id);
  }
}
