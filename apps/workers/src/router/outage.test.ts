import { test } from "node:test";
import assert from "node:assert/strict";
import { CircuitBreaker, outageDecision, type OutageInput } from "./outage.js";

test("breaker: opens after 5 failures in a row, lets one trial through after the cooldown, closes on success", () => {
  const b = new CircuitBreaker();
  for (let i = 0; i < 4; i++) b.onFailure(i);
  assert.equal(b.state(4), "closed");
  b.onFailure(1_000);
  assert.equal(b.state(1_000), "open");
  assert.equal(b.waitMs(2_000), 4_000, "waits out the 5 s cooldown");
  assert.equal(b.waitMs(6_000), 0, "half-open: one trial call");
  assert.ok(b.waitMs(6_001) > 0, "only one");
  b.onFailure(6_500);
  assert.equal(b.state(6_500), "open");
  assert.equal(b.waitMs(6_500), 10_000, "a failed trial doubles the cooldown");
  assert.equal(b.waitMs(16_500), 0);
  b.onSuccess();
  assert.equal(b.state(16_600), "closed");
  assert.equal(b.waitMs(16_600), 0);
});

const base: OutageInput = { now: 0, firstFailedAt: 0, failures: 1, windowMs: 600_000, baseDelayMs: 1_000, providerDown: false };

test("a 5-minute outage without a deadline: every decision is to wait, with backoff capped at 30 s; none fails", () => {
  let t = 0;
  let failures = 0;
  const delays: number[] = [];
  while (t < 5 * 60_000) {
    failures++;
    const d = outageDecision({ ...base, now: t, failures, providerDown: failures >= 5 });
    assert.equal(d.kind, "retry", `at ${t} ms`);
    if (d.kind !== "retry") break;
    delays.push(d.delayMs);
    t += d.delayMs;
  }
  assert.deepEqual(delays.slice(0, 6), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
  assert.ok(delays.every((d) => d <= 30_000));
  // The old policy (6 attempts from 1 s) gave up after ~31 s; this one is still waiting at 5 min.
  assert.equal(outageDecision({ ...base, now: 9 * 60_000, failures: 30, providerDown: true }).kind, "retry");
  assert.equal(outageDecision({ ...base, now: 10 * 60_000, failures: 31, providerDown: true }).kind, "fail");
});

test("retries are bounded by the item's deadline; a down provider's items move when another route can still make it", () => {
  const dl = { ...base, deadlineAt: 60_000 };
  assert.deepEqual(outageDecision({ ...dl, now: 59_000, failures: 8 }), { kind: "retry", delayMs: 1_000 });
  assert.equal(outageDecision({ ...dl, now: 60_000 }).kind, "fail");
  assert.equal(outageDecision({ ...dl, now: 10_000, providerDown: true, alternativeEtaMs: 5_000 }).kind, "reroute");
  assert.equal(outageDecision({ ...dl, now: 56_000, providerDown: true, alternativeEtaMs: 5_000 }).kind, "retry", "too late for the other route: keep waiting");
  assert.equal(outageDecision({ ...dl, now: 10_000, providerDown: false, alternativeEtaMs: 5_000 }).kind, "retry", "one failure is not an outage");
});
