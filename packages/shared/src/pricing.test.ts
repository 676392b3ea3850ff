import { test } from "node:test";
import assert from "node:assert/strict";
import { shareCost } from "./pricing.js";

test("shareCost: the stored shares add up exactly to the stored call cost", () => {
  for (const [usd, n] of [
    [0.00012345, 7],
    [0.0012345678912, 25],
    [1 / 3, 3],
    [0.00000001, 4],
    [0, 5],
  ] as const) {
    const shares = shareCost(usd, n);
    assert.equal(shares.length, n);
    const units = (x: number) => Math.round(Number(x.toFixed(8)) * 1e8);
    assert.equal(shares.map(units).reduce((a, b) => a + b, 0), units(usd), `${usd} over ${n}`);
    assert.ok(Math.max(...shares.map(units)) - Math.min(...shares.map(units)) <= 1, "shares differ by at most one unit");
  }
  assert.deepEqual(shareCost(0.5, 0), []);
});
