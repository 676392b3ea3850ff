import { test } from "node:test";
import assert from "node:assert/strict";
import { AdaptiveLimiter } from "./limiter.js";

const idle = { running: 0, waiting: 0, kvUsage: 0.1 };

test("starts low and grows (slow start) while the engine has no queue and the limit is used", () => {
  const l = new AdaptiveLimiter();
  assert.equal(l.limit, 2);
  let t = 0;
  for (let i = 0; i < 10; i++) {
    l.onGauges(idle, (t += 100));
    l.onSuccess(500, l.limit, t);
  }
  assert.equal(l.limit, 12);
});

test("does not grow a limit that is not used (app-limited)", () => {
  const l = new AdaptiveLimiter({ initial: 10 });
  l.onGauges(idle, 0);
  for (let i = 0; i < 20; i++) l.onSuccess(500, 3, 10);
  assert.equal(l.limit, 10);
});

test("a waiting queue above 5 shrinks it, once per round trip; then growth is additive", () => {
  const l = new AdaptiveLimiter({ initial: 100 });
  l.onGauges({ running: 60, waiting: 40, kvUsage: 1 }, 1_000);
  assert.equal(l.limit, 65, "the excess (35 queued beyond 5) is shed at once");
  l.onGauges({ running: 60, waiting: 40, kvUsage: 1 }, 1_050);
  assert.equal(l.limit, 65, "not twice within one round trip");
  l.onGauges({ running: 60, waiting: 7, kvUsage: 1 }, 1_400);
  assert.equal(l.limit, 58, "small excess: x0.9");
  assert.equal(l.signal, "congested");
  // Congestion avoidance: +1 per limit's worth of calls.
  l.onGauges({ running: 58, waiting: 0, kvUsage: 0.5 }, 2_000);
  for (let i = 0; i < 58; i++) l.onSuccess(300, 58, 2_000);
  assert.equal(l.limit, 59);
});

test("KV usage above 0.8 with requests waiting holds the limit", () => {
  const l = new AdaptiveLimiter({ initial: 20 });
  l.onGauges({ running: 20, waiting: 2, kvUsage: 0.9 }, 0);
  assert.equal(l.signal, "hold");
  for (let i = 0; i < 10; i++) l.onSuccess(300, 20, 10);
  assert.equal(l.limit, 20);
  l.onGauges({ running: 20, waiting: 0, kvUsage: 0.9 }, 100);
  l.onSuccess(300, 20, 110);
  assert.equal(l.limit, 21, "full KV without a queue: the engine still admits, keep growing");
});

test("failures shrink it; never below min", () => {
  const l = new AdaptiveLimiter({ initial: 4 });
  let t = 0;
  for (let i = 0; i < 30; i++) l.onFailure((t += 1_000));
  assert.equal(l.limit, 1);
});

test("stale gauges (older than 1 s): no growth; latency rising against its baseline shrinks it", () => {
  const l = new AdaptiveLimiter({ initial: 40 });
  l.onGauges(idle, 0);
  l.onSuccess(200, 40, 100);
  assert.equal(l.limit, 41);
  assert.equal(l.isStale(1_500), true);
  for (let i = 0; i < 20; i++) l.onSuccess(200, 41, 1_500 + i);
  assert.equal(l.limit, 41, "stale: no growth");
  assert.equal(l.signal, "stale");
  let t = 2_000;
  l.onSuccess(1_000, 41, (t += 1_500));
  assert.ok(l.limit < 41 && l.limit >= 20, `latency 5x the baseline sheds load, at most half per step (${l.limit})`);
  for (let i = 0; i < 20; i++) l.onSuccess(1_000, 41, (t += 1_500));
  assert.ok(l.limit < 10, `keeps shedding while latency stays high (${l.limit})`);
});
