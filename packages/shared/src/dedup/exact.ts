/**
 * The exact cache and in-flight coalescing, on Redis (hot, TTL) with a durable copy in Postgres.
 *
 * Redis keys (under the queue prefix):
 *   {p}:xc:{key}        the cached answer, JSON {o: output, s: sourceItemId}, with a TTL
 *   {p}:xc:rank         ZSET of cached keys scored by last use (LRU) or use count (LFU)
 *   {p}:if:{key}        "in flight": the leader item id, with a TTL
 *   {p}:fo:{key}        LIST of follower items waiting for the leader's answer
 *
 * Claiming and completing are single Lua scripts, so a follower can never register after the
 * leader finished (it would see the cached answer or become the leader instead).
 */
import type { Redis } from "ioredis";
import { inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { queryRows } from "../db/client.js";
import { cacheEntries } from "../db/schema/index.js";

export type EvictionPolicy = "lru" | "lfu";

export interface ExactCacheOptions {
  prefix: string;
  /** Most entries kept; beyond it the least recently (LRU) or least often (LFU) used go first. */
  maxEntries: number;
  policy: EvictionPolicy;
  /** How long a follower waits for its leader before the sweeper takes over, in ms. @defaultValue 600000 */
  inflightTtlMs?: number;
}

export interface CachedAnswer {
  output: unknown;
  sourceItemId: number | null;
}

export interface CacheWrite {
  key: string;
  tenantId: string;
  namespace: string;
  task: string;
  model: string;
  output: unknown;
  sourceItemId: number | null;
  ttlSeconds: number;
}

/** "none": a follow-only claim found nothing in flight (the item goes its own way, leading nothing). */
export type ClaimResult = { kind: "hit"; answer: CachedAnswer } | { kind: "leader" } | { kind: "follower" } | { kind: "none" };

export interface Follower {
  itemId: number;
  jobId: string;
  tenantId: string;
}

const CLAIM = `
local hit = redis.call('GET', KEYS[1])
if hit then return {'hit', hit} end
if ARGV[4] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return {'none'} end
elseif redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return {'leader'} end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return {'follower'}
`;

// KEYS: inflight, followers. ARGV: leader item id. Only the leader may release its claim.
const COMPLETE = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return {} end
local f = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return f
`;

export class ExactCache {
  private readonly p: string;
  constructor(
    private readonly redis: Redis,
    private readonly db: Db,
    private readonly opts: ExactCacheOptions,
  ) {
    this.p = `${opts.prefix}:xc`;
    redis.defineCommand("sieveClaim", { numberOfKeys: 3, lua: CLAIM });
    redis.defineCommand("sieveComplete", { numberOfKeys: 2, lua: COMPLETE });
  }

  private k(key: string): string {
    return `${this.p}:${key}`;
  }

  /** Answers for the keys that have one (Redis first, then Postgres, which refills Redis). */
  async getMany(keys: string[]): Promise<Map<string, CachedAnswer>> {
    const out = new Map<string, CachedAnswer>();
    if (keys.length === 0) return out;
    const unique = [...new Set(keys)];
    const raw = await this.redis.mget(...unique.map((k) => this.k(k)));
    const missing: string[] = [];
    unique.forEach((key, i) => {
      const v = raw[i];
      if (v) out.set(key, decode(v));
      else missing.push(key);
    });
    if (missing.length > 0) {
      const rows = await this.db
        .select({ key: cacheEntries.key, output: cacheEntries.output, sourceItemId: cacheEntries.sourceItemId, expiresAt: cacheEntries.expiresAt })
        .from(cacheEntries)
        .where(sql`${inArray(cacheEntries.key, missing)} and (${cacheEntries.expiresAt} is null or ${cacheEntries.expiresAt} > now())`);
      if (rows.length > 0) {
        const pipe = this.redis.pipeline();
        for (const r of rows) {
          const a = { output: r.output, sourceItemId: r.sourceItemId };
          out.set(r.key, a);
          const ttlMs = r.expiresAt ? r.expiresAt.getTime() - Date.now() : 0;
          if (ttlMs > 0) pipe.set(this.k(r.key), encode(a), "PX", ttlMs);
        }
        await pipe.exec();
      }
    }
    if (out.size > 0) await this.touch([...out.keys()]);
    return out;
  }

  /** Records use for eviction (Redis rank + Postgres last_hit_at/hits). */
  private async touch(keys: string[]): Promise<void> {
    const pipe = this.redis.pipeline();
    const now = Date.now();
    for (const key of keys) {
      if (this.opts.policy === "lru") pipe.zadd(`${this.p}:rank`, now, key);
      else pipe.zincrby(`${this.p}:rank`, 1, key);
    }
    await pipe.exec();
    await this.db.execute(sql`update cache_entries set hits = hits + 1, last_hit_at = now() where key = any(${sql.param(keys)}::text[])`);
  }

  /**
   * Claims keys for items that missed the cache: each is a late hit (answered meanwhile), the
   * leader (this item goes to the LLM), or a follower (waits for the leader's answer).
   * `followOnly`: the item may follow an item already in flight but never leads (a provider batch
   * can take hours, and followers must not wait that long): "none" when nothing is in flight.
   */
  async claim(entries: Array<{ key: string; follower: Follower }>, opts: { followOnly?: boolean } = {}): Promise<ClaimResult[]> {
    if (entries.length === 0) return [];
    const ttl = String(this.opts.inflightTtlMs ?? 600_000);
    const pipe = this.redis.pipeline();
    for (const e of entries) {
      (pipe as unknown as { sieveClaim: (...a: string[]) => void }).sieveClaim(
        this.k(e.key),
        `${this.opts.prefix}:if:${e.key}`,
        `${this.opts.prefix}:fo:${e.key}`,
        String(e.follower.itemId),
        JSON.stringify(e.follower),
        ttl,
        opts.followOnly ? "1" : "0",
      );
    }
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, value]) => {
      if (err) throw err;
      const [kind, payload] = value as [string, string?];
      if (kind === "hit") return { kind: "hit", answer: decode(payload!) };
      return kind === "leader" ? { kind: "leader" } : kind === "none" ? { kind: "none" } : { kind: "follower" };
    });
  }

  /**
   * Which of these items hold a live in-flight claim of their key (`leading`), and which wait for
   * another item's (`waiting`; the claim expires after `inflightTtlMs`, and then neither).
   */
  async inFlight(items: ReadonlyArray<{ key: string; itemId: number }>): Promise<{ leading: Set<number>; waiting: Set<number> }> {
    const out = { leading: new Set<number>(), waiting: new Set<number>() };
    if (items.length === 0) return out;
    const owners = await this.redis.mget(...items.map((it) => `${this.opts.prefix}:if:${it.key}`));
    items.forEach((it, i) => {
      const owner = owners[i];
      if (owner === String(it.itemId)) out.leading.add(it.itemId);
      else if (owner) out.waiting.add(it.itemId);
    });
    return out;
  }

  /**
   * Leaders are done: releases their claims (one pipeline, however many) and returns, per leader,
   * the followers that waited for it.
   */
  async completeMany(leaders: Array<{ key: string; leaderItemId: number }>): Promise<Follower[][]> {
    if (leaders.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const l of leaders) {
      (pipe as unknown as { sieveComplete: (...a: string[]) => void }).sieveComplete(
        `${this.opts.prefix}:if:${l.key}`,
        `${this.opts.prefix}:fo:${l.key}`,
        String(l.leaderItemId),
      );
    }
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, value]) => {
      if (err) throw err;
      return ((value as string[] | null) ?? []).map((s) => JSON.parse(s) as Follower);
    });
  }

  /** Writes answers (Redis with TTL + Postgres), then evicts beyond maxEntries. */
  async setMany(writes: CacheWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const pipe = this.redis.pipeline();
    const now = Date.now();
    for (const w of writes) {
      pipe.set(this.k(w.key), encode({ output: w.output, sourceItemId: w.sourceItemId }), "EX", w.ttlSeconds);
      if (this.opts.policy === "lru") pipe.zadd(`${this.p}:rank`, now, w.key);
      else pipe.zadd(`${this.p}:rank`, "NX", 0, w.key);
    }
    await pipe.exec();
    await this.db
      .insert(cacheEntries)
      .values(
        writes.map((w) => ({
          key: w.key,
          tenantId: w.tenantId,
          namespace: w.namespace,
          task: w.task,
          model: w.model,
          output: w.output,
          sourceItemId: w.sourceItemId,
          expiresAt: new Date(now + w.ttlSeconds * 1000),
        })),
      )
      .onConflictDoUpdate({
        target: cacheEntries.key,
        set: { output: sql`excluded.output`, sourceItemId: sql`excluded.source_item_id`, expiresAt: sql`excluded.expires_at`, lastHitAt: sql`now()` },
      });
    await this.evictIfNeeded();
  }

  /** Drops the least recently / least often used entries beyond maxEntries. Returns how many. */
  async evictIfNeeded(): Promise<number> {
    const n = await this.redis.zcard(`${this.p}:rank`);
    const excess = n - this.opts.maxEntries;
    if (excess <= 0) return 0;
    const popped = await this.redis.zpopmin(`${this.p}:rank`, excess);
    const keys = popped.filter((_, i) => i % 2 === 0);
    if (keys.length > 0) {
      await this.redis.del(...keys.map((k) => this.k(k)));
      await this.db.delete(cacheEntries).where(inArray(cacheEntries.key, keys));
    }
    return keys.length;
  }

  /** Deletes expired durable entries (Redis expires its own). */
  async deleteExpired(): Promise<number> {
    const rows = await queryRows<{ key: string }>(this.db, sql`delete from cache_entries where expires_at <= now() returning key`);
    if (rows.length > 0) await this.redis.zrem(`${this.p}:rank`, ...rows.map((r) => r.key));
    return rows.length;
  }

  async size(): Promise<number> {
    return this.redis.zcard(`${this.p}:rank`);
  }
}

function encode(a: CachedAnswer): string {
  return JSON.stringify({ o: a.output, s: a.sourceItemId });
}

function decode(s: string): CachedAnswer {
  const v = JSON.parse(s) as { o: unknown; s: number | null };
  return { output: v.o, sourceItemId: v.s };
}
