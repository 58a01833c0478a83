/** Temporal connections and namespace setup shared by the client, the worker and `filestore dev`. */
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Config } from './config';
import { SEARCH_ATTRIBUTES } from './search-attributes';

export async function connectTemporal(config: Pick<Config, 'temporalAddress' | 'temporalNamespace'>): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: config.temporalAddress, connectTimeout: '5s' });
  return { client: new Client({ connection, namespace: config.temporalNamespace }), connection };
}

/**
 * Registers Filestore's search attributes on the namespace if they are missing, so runs can be
 * searched in the Web UI on any server (the dev server also gets them as start flags).
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = Object.values(SEARCH_ATTRIBUTES).filter((k) => !have.has(k.name));
  if (missing.length === 0) return [];
  const searchAttributes: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const k of missing) searchAttributes[k.name] = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  } catch (err) {
    // Another worker registered them first.
    if (!/already exists/i.test((err as Error).message)) throw err;
  }
  return missing.map((k) => k.name);
}

/** `--search-attribute` flags for `temporal server start-dev`. */
export function devServerSearchAttributeArgs(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]);
}
