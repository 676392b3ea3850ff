/** A drizzle transaction where the batch lane's operations expect a Db. */
import type { Db } from "@sieve/shared";

export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** A transaction used where a Db is expected (drizzle's transaction type is a different generic). */
export const asDb = (tx: Tx): Db => tx as unknown as Db;
