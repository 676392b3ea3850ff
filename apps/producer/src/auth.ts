/**
 * API keys: `Authorization: Bearer <key>` or `x-api-key: <key>`. Keys are looked up by their
 * sha256 hash; a small in-process cache (60 s) keeps the lookup off the hot path, so a revoked
 * key stops working within a minute.
 */
import { timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { HttpError, type Db } from "@sieve/shared";
import { tenantForKey, touchApiKey } from "@sieve/shared/db/ops/tenants";

const TTL_MS = 60_000;

export function apiKeyAuth(db: Db) {
  const cache = new Map<string, { tenantId: string | undefined; at: number }>();
  // Last use per key for the console (docs/console.md): written at most once a minute, off the request path.
  const touched = new Map<string, number>();
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const header = req.header("authorization");
      const key = header?.startsWith("Bearer ") ? header.slice(7).trim() : req.header("x-api-key")?.trim();
      if (!key) throw new HttpError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>");
      const hit = cache.get(key);
      let tenantId: string | undefined;
      if (hit && Date.now() - hit.at < TTL_MS) tenantId = hit.tenantId;
      else {
        tenantId = await tenantForKey(db, key);
        if (cache.size > 10_000) cache.clear();
        cache.set(key, { tenantId, at: Date.now() });
      }
      if (!tenantId) throw new HttpError(401, "unauthorized", "invalid API key");
      res.locals.tenantId = tenantId;
      if (Date.now() - (touched.get(key) ?? 0) >= TTL_MS) {
        if (touched.size > 10_000) touched.clear();
        touched.set(key, Date.now());
        touchApiKey(db, key).catch(() => touched.delete(key));
      }
      next();
    } catch (e) {
      next(e);
    }
  };
}

/** The tenant the request authenticated as (set by apiKeyAuth). */
export function tenantOf(res: Response): { tenantId: string } {
  return res.locals as { tenantId: string };
}

/** HTTP basic auth for the operator dashboard, compared in constant time. */
export function basicAuth(user: string, password: string) {
  const expected = Buffer.from(`${user}:${password}`);
  return (req: Request, res: Response, next: NextFunction) => {
    const h = req.header("authorization");
    const given = h?.startsWith("Basic ") ? Buffer.from(h.slice(6), "base64") : Buffer.alloc(0);
    const ok = given.length === expected.length && timingSafeEqual(given, expected);
    if (ok) return next();
    res.setHeader("WWW-Authenticate", 'Basic realm="sieve-admin"');
    res.status(401).json({ error: { code: "unauthorized", message: "operator credentials required" } });
  };
}
