/**
 * Idempotency keys (README, "Idempotency-Key"). A key row is inserted in the transaction that
 * creates its job (`createJob`, `createBulkJob`); the primary key (tenant_id, key) is what makes
 * two concurrent requests with one key create exactly one job: the second insert waits for the
 * first transaction and then fails, and its caller replays the winner's job instead.
 */
import { createHash } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { idempotencyKeys } from "../schema/index.js";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export type IdempotentRoute = "jobs" | "bulk";

/** The key a request carries, to be stored with its job. */
export interface IdempotencyClaim {
  key: string;
  route: IdempotentRoute;
  /** Null until a bulk body has arrived completely. */
  requestHash: string | null;
  /** Keys older than this many hours are forgotten (purged, reusable). */
  ttlHours: number;
}

export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;

const PK = "idempotency_keys_tenant_id_key_pk";

/** The key is already taken (by a committed job, or by a transaction that just committed). */
export class IdempotencyKeyTaken extends Error {
  constructor() {
    super("Idempotency-Key: already used");
    this.name = "IdempotencyKeyTaken";
  }
}

/** SHA-256 of a JSON value with object keys sorted (key order and whitespace do not matter). */
export function canonicalHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** The live (not expired) row of a tenant's key. */
export async function findIdempotencyKey(db: Db, tenantId: string, key: string, ttlHours: number): Promise<IdempotencyRow | undefined> {
  const rows = await db
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, key), sql`${idempotencyKeys.createdAt} > now() - make_interval(hours => ${ttlHours})`))
    .limit(1);
  return rows[0];
}

/**
 * Inside the job's transaction: forgets an expired row of the same key, then claims the key for
 * `jobId`. Throws IdempotencyKeyTaken when a live row exists (the transaction then rolls back).
 */
export async function claimIdempotencyKey(tx: Tx, tenantId: string, jobId: string, claim: IdempotencyClaim): Promise<void> {
  await tx
    .delete(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, claim.key), sql`${idempotencyKeys.createdAt} <= now() - make_interval(hours => ${claim.ttlHours})`));
  try {
    // A savepoint is not needed: a failed claim fails the whole transaction, which is the point.
    await tx.insert(idempotencyKeys).values({ tenantId, key: claim.key, route: claim.route, requestHash: claim.requestHash, jobId });
  } catch (e) {
    if (isUniqueViolation(e, PK)) throw new IdempotencyKeyTaken();
    throw e;
  }
}

/** Bulk: once the body is in, the key gets its hash and the answer to replay (same transaction as the job's commit). */
export async function completeIdempotencyKey(tx: Tx, jobId: string, requestHash: string, response: unknown): Promise<void> {
  await tx.update(idempotencyKeys).set({ requestHash, response }).where(eq(idempotencyKeys.jobId, jobId));
}

/** Forgets keys older than the retention (the sweeper calls it; one indexed range delete). */
export async function purgeIdempotencyKeys(db: Db, ttlHours: number, limit = 10_000): Promise<number> {
  const res = (await db.execute(
    sql`delete from idempotency_keys where ctid = any(array(
          select ctid from idempotency_keys where created_at <= now() - make_interval(hours => ${ttlHours}) limit ${limit}))`,
  )) as unknown as { rowCount?: number | null; affectedRows?: number };
  return res.rowCount ?? res.affectedRows ?? 0;
}

/** A unique violation (SQLSTATE 23505) on `constraint`, whether raw from pg or wrapped by drizzle. */
export function isUniqueViolation(e: unknown, constraint: string): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const c = cur as { code?: unknown; constraint?: unknown };
    if (c.code === "23505" && c.constraint === constraint) return true;
  }
  return false;
}
