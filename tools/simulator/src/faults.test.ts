import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { applyItemFaults, createRng, planFaults, SimulatorFaults, truncateText } from "./faults.js";

const value = { results: [{ id: "a", label: "x" }, { id: "b", label: "y" }, { id: "c", label: "x" }] };
const where = { path: ["results"], entrySchema: { type: "object", properties: { id: { type: "string" }, label: { enum: ["x", "y"] } } } };
const none = { drop: false, duplicate: false, badValue: false, picks: { drop: 0, duplicate: 0, badValue: 0 } };

describe("faults", () => {
  test("the PRNG is reproducible from a seed", () => {
    const a = createRng(5);
    const b = createRng(5);
    const xs = Array.from({ length: 5 }, () => a());
    assert.deepEqual(Array.from({ length: 5 }, () => b()), xs);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
  });

  test("rates 0 and 1 are never / always", () => {
    const rng = createRng(1);
    for (let i = 0; i < 20; i++) {
      assert.equal(planFaults({}, rng).request, undefined);
      const p = planFaults({ rate429: 1, retryAfterS: 4, rateDropItem: 1 }, rng);
      assert.deepEqual(p.request, { kind: "rate_limited", retryAfterS: 4 });
      assert.equal(p.drop, true);
    }
    // Timeout wins over 429, which wins over 5xx.
    assert.equal(planFaults({ rateTimeout: 1, rate429: 1, rate5xx: 1 }, rng).request?.kind, "timeout");
    assert.equal(planFaults({ rate429: 1, rate5xx: 1 }, rng).request?.kind, "rate_limited");
  });

  test("latency is latencyMs plus up to latencyJitterMs", () => {
    const rng = createRng(3);
    for (let i = 0; i < 50; i++) {
      const ms = planFaults({ latencyMs: 100, latencyJitterMs: 50 }, rng).latencyMs;
      assert.ok(ms >= 100 && ms <= 150);
    }
  });

  test("the knobs are validated", () => {
    assert.equal(SimulatorFaults.safeParse({ rate429: 1.5 }).success, false);
    assert.equal(SimulatorFaults.safeParse({ latencyMs: -1 }).success, false);
    assert.equal(SimulatorFaults.safeParse({ unknown: 1 }).success, false);
    assert.equal(SimulatorFaults.safeParse({ rate429: 0.2, seed: 9 }).success, true);
  });

  test("poison, drop, duplicate, bad value: exactly what they say, input untouched", () => {
    const before = structuredClone(value);
    const poisoned = applyItemFaults(value, where, new Set(["b"]), none);
    assert.deepEqual((poisoned.value as typeof value).results.map((r) => r.id), ["a", "c"]);
    assert.equal(poisoned.poisoned, 1);
    const dropped = applyItemFaults(value, where, new Set(), { ...none, drop: true, picks: { ...none.picks, drop: 0.5 } });
    assert.deepEqual((dropped.value as typeof value).results.map((r) => r.id), ["a", "c"]);
    const dup = applyItemFaults(value, where, new Set(), { ...none, duplicate: true, picks: { ...none.picks, duplicate: 0.99 } });
    assert.deepEqual((dup.value as typeof value).results.map((r) => r.id), ["a", "b", "c", "c"]);
    const bad = applyItemFaults(value, where, new Set(), { ...none, badValue: true });
    assert.equal((bad.value as typeof value).results[0]!.label, "__sim_not_in_enum__");
    assert.deepEqual(value, before);
  });

  test("truncated JSON never parses", () => {
    for (const v of [{}, [], { results: [] }, value]) assert.throws(() => JSON.parse(truncateText(JSON.stringify(v))));
  });
});
