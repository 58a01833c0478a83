export { FilestoreClient, toFilestoreError } from './filestore-client';
export { CatalogReader } from './catalog-reader';
export type { MutationHandle, MutationOptions, MutationProgress, PutOptions, PutSource, JournalQuery } from './filestore-client';
export type { MutationResult, MutationRequest, NodeSummary } from '../mutations';
export type { ListPageOptions, NodePage } from '../catalog/listing';
export * from '../errors';
export { CHANGES_CHANNEL, changeEventOf } from '../change-events';
export type { ChangeEvent } from '../change-events';
