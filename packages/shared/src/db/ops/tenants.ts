import { randomBytes } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../client.js";
import { apiKeys, tenants } from "../schema/index.js";
import { sha256 } from "../../batchKey.js";

/** Keys are only ever stored as sha256 hashes. */
export function hashApiKey(key: string): string {
  return sha256(`sieve-api-key:${key}`);
}

export function generateApiKey(): string {
  return `sk-sieve-${randomBytes(24).toString("base64url")}`;
}

export async function ensureTenant(db: Db, id: string, name = id): Promise<void> {
  await db.insert(tenants).values({ id, name }).onConflictDoNothing();
}

/** Adds a key for a tenant (creating the tenant). Idempotent for the same key. */
export async function addApiKey(db: Db, tenantId: string, key: string, label?: string): Promise<void> {
  await ensureTenant(db, tenantId);
  await db
    .insert(apiKeys)
    .values({ tenantId, keyHash: hashApiKey(key), label: label ?? null })
    .onConflictDoNothing();
}

/** The tenant a key belongs to, or undefined for an unknown or revoked key. */
export async function tenantForKey(db: Db, key: string): Promise<string | undefined> {
  const rows = await db
    .select({ tenantId: apiKeys.tenantId })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)))
    .limit(1);
  return rows[0]?.tenantId;
}

/** Parses SIEVE_API_KEYS ("tenant:key,tenant2:key2"). */
export function parseBootstrapKeys(spec: string | undefined): Array<{ tenantId: string; key: string }> {
  if (!spec) return [];
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((pair) => {
      const i = pair.indexOf(":");
      if (i <= 0 || i === pair.length - 1) throw new Error('SIEVE_API_KEYS: expected "tenant:key" pairs separated by commas');
      const tenantId = pair.slice(0, i);
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(tenantId)) throw new Error(`SIEVE_API_KEYS: tenant "${tenantId}" must be 1-64 characters of A-Z a-z 0-9 _ -`);
      return { tenantId, key: pair.slice(i + 1) };
    });
}

/** Records that a key was just used (the console's "last used"); callers throttle it. */
export async function touchApiKey(db: Db, key: string): Promise<void> {
  await db.update(apiKeys).set({ lastUsedAt: new Date() }).where(eq(apiKeys.keyHash, hashApiKey(key)));
}
