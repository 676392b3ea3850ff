/**
 * Circuit breakers shared through Redis (apps/workers/src/router/sharedBreakers.ts), on the real
 * Redis: two "workers" (each its own connection and breakers). When one opens its breaker for a
 * provider the other stops calling it too; the key expires with the open period; a success
 * clears it; the GPU lane is not shared; an unreachable Redis leaves breakers per process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { createLogger } from "@sieve/shared";
import { deleteRedisPrefix, testPrefix } from "@sieve/shared/db/testing";
import { CircuitBreaker } from "@sieve/workers/router/outage";
import { SharedBreakers } from "@sieve/workers/router/sharedBreakers";

const URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const log = createLogger({ level: "silent" });

describe("circuit breakers shared by worker processes", () => {
  const prefix = testPrefix("breakers");
  let ra: Redis;
  let rb: Redis;
  before(() => {
    ra = new Redis(URL, { maxRetriesPerRequest: 1 });
    rb = new Redis(URL, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    await ra.quit();
    await rb.quit();
    await deleteRedisPrefix(URL, prefix);
  });

  test("one worker finds OpenAI down: the other's breaker opens without a call of its own, until the shared period ends", async () => {
    const a = new SharedBreakers(ra, prefix, log);
    const b = new SharedBreakers(rb, prefix, log);
    const ba = new CircuitBreaker();
    const bb = new CircuitBreaker();
    a.attach("openai", ba);
    b.attach("openai", bb);
    const now = Date.now();
    for (let i = 0; i < 5; i++) ba.onFailure(now);
    assert.equal(ba.state(now), "open");
    // The key is written asynchronously (onOpen): wait for it.
    for (let i = 0; i < 50 && (await rb.exists(a.key("openai"))) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const ttl = await rb.pttl(a.key("openai"));
    assert.ok(ttl > 0 && ttl <= 5_000, `expires with the 5 s open period (pttl ${ttl})`);

    assert.equal(bb.state(Date.now()), "closed", "before it syncs, the other worker knows nothing");
    assert.equal(await b.sync(), true);
    const t = Date.now();
    assert.equal(bb.state(t), "open");
    assert.ok(bb.waitMs(t) > 3_000, "waits out the shared period instead of calling");
    // Once the period is over: one trial call of its own (half-open), as with a local opening.
    assert.equal(bb.state(now + 5_001), "half-open");
    assert.equal(bb.waitMs(now + 5_001), 0);

    // A trial that succeeds closes the breaker and clears the key: a third worker starting now stays closed.
    ba.waitMs(now + 5_001);
    ba.onSuccess();
    for (let i = 0; i < 50 && (await rb.exists(a.key("openai"))) === 1; i++) await new Promise((r) => setTimeout(r, 20));
    const c = new SharedBreakers(rb, prefix, log);
    const bc = new CircuitBreaker();
    c.attach("openai", bc);
    await c.sync();
    assert.equal(bc.state(Date.now()), "closed");
  });

  test("a failed trial re-opens for longer, and the others follow; the GPU lane is never shared", async () => {
    const a = new SharedBreakers(ra, prefix, log);
    const b = new SharedBreakers(rb, prefix, log);
    const [ba, bb, va, vb] = [new CircuitBreaker(), new CircuitBreaker(), new CircuitBreaker(), new CircuitBreaker()];
    a.attach("anthropic", ba);
    b.attach("anthropic", bb);
    a.attach("vllm", va);
    b.attach("vllm", vb);
    const t0 = Date.now() - 5_000;
    for (let i = 0; i < 5; i++) ba.onFailure(t0);
    assert.equal(ba.waitMs(Date.now()), 0, "half-open: trial");
    ba.onFailure(Date.now()); // the trial failed: open 10 s
    for (let i = 0; i < 5; i++) va.onFailure(Date.now());
    await new Promise((r) => setTimeout(r, 100));
    await b.sync();
    assert.equal(bb.state(Date.now()), "open");
    assert.ok(bb.waitMs(Date.now()) > 8_000, `the doubled period is shared (${bb.waitMs(Date.now())} ms)`);
    assert.equal(await rb.exists(a.key("vllm")), 0);
    assert.equal(vb.state(Date.now()), "closed", "one worker's engine being down says nothing about another's");
  });

  test("Redis unreachable: sync says so, and breakers keep working per process", async () => {
    // A port that accepts nothing: a server we open and close again.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    dead.on("error", () => {});
    try {
      const s = new SharedBreakers(dead, prefix, log);
      const b = new CircuitBreaker();
      s.attach("openai", b);
      assert.equal(await s.sync(), false);
      const now = Date.now();
      for (let i = 0; i < 5; i++) b.onFailure(now);
      assert.equal(b.state(now), "open", "the local breaker opened all the same");
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      dead.disconnect();
    }
  });
});
