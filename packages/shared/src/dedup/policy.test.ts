import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEnv } from "../config/env.js";
import { CarriedCachePolicy, resolveCachePolicy } from "./policy.js";

const env = parseEnv({ SIEVE_CACHE_TTL_SECONDS: "600", SIEVE_SEMANTIC_TASKS: "classify", SIEVE_LEARNED_CACHE: "true" });

test("a request without cache options gets the server's defaults", () => {
  assert.deepEqual(resolveCachePolicy(env, "classify", undefined), {
    mode: "use",
    ttlSeconds: 600,
    namespace: "default",
    semantic: true,
    semanticThreshold: env.SIEVE_SEMANTIC_THRESHOLD_CLASSIFY,
    learned: false,
  });
  const t = resolveCachePolicy(env, "translate", null);
  assert.equal(t.semantic, false, "translate is not in SIEVE_SEMANTIC_TASKS");
  assert.equal(t.semanticThreshold, env.SIEVE_SEMANTIC_THRESHOLD_TRANSLATE);
});

test("the request's options win over the defaults", () => {
  const p = resolveCachePolicy(env, "classify", { mode: "refresh", ttlSeconds: 5, namespace: "eval", semantic: false, learned: true });
  assert.deepEqual(p, { mode: "refresh", ttlSeconds: 5, namespace: "eval", semantic: false, semanticThreshold: env.SIEVE_SEMANTIC_THRESHOLD_CLASSIFY, learned: true });
  assert.equal(resolveCachePolicy(env, "translate", { mode: "use", learned: true }).learned, false, "learned is for classify only");
});

test("a bulk body: semantic only when asked, never learned", () => {
  assert.equal(resolveCachePolicy(env, "classify", undefined, "bulk").semantic, false);
  assert.equal(resolveCachePolicy(env, "classify", { mode: "use", semantic: true }, "bulk").semantic, true);
  assert.equal(resolveCachePolicy(env, "classify", { mode: "use", learned: true }, "bulk").learned, false);
});

test("switches the server has off stay off whatever the request says", () => {
  const off = parseEnv({ SIEVE_CACHE_ENABLED: "false" });
  assert.equal(resolveCachePolicy(off, "classify", { mode: "use" }).mode, "bypass");
  const noSemantic = parseEnv({ SIEVE_SEMANTIC_CACHE: "off" });
  assert.equal(resolveCachePolicy(noSemantic, "classify", { mode: "use", semantic: true }).semantic, false);
  assert.equal(resolveCachePolicy(parseEnv({}), "classify", { mode: "use", learned: true }).learned, false, "SIEVE_LEARNED_CACHE is off by default");
});

test("a parcel enqueued before the whole policy was carried still parses", () => {
  assert.deepEqual(CarriedCachePolicy.parse({ ttlSeconds: 60, namespace: "default" }), { mode: "use", ttlSeconds: 60, namespace: "default", semantic: false, learned: false });
});
