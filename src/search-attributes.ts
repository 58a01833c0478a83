/**
 * Filestore's search attributes as the Temporal SDK's typed keys (see SEARCH_ATTRIBUTE_NAMES in
 * src/mutations.ts for the names): for workflow code, the gRPC client and namespace setup.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTE_NAMES } from './mutations';

export const SEARCH_ATTRIBUTES = {
  mount: defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.mount, SearchAttributeType.KEYWORD),
  op: defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.op, SearchAttributeType.KEYWORD),
  path: defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.path, SearchAttributeType.KEYWORD),
  key: defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.key, SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.status, SearchAttributeType.KEYWORD),
} as const;
