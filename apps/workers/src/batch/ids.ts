/** Ids the batch lane writes into provider requests. */

/** `sv{batchId}-{seq}`: at most 64 characters of [a-zA-Z0-9_-], valid for both providers (batch-types.ts CUSTOM_ID_PATTERN). */
export function customIdOf(batchId: number, seq: number): string {
  return `sv${batchId}-${seq}`;
}

/** Call-local ids of a request's items, as the realtime lane assigns them ("i1".."iN"): position k is item_ids[k]. */
export function callIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `i${i + 1}`);
}
