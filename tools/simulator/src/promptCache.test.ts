import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PromptCache } from "./promptCache.js";

const seg = (text: string, tokens: number, ttlMs?: number) => ({ text, tokens, ...(ttlMs !== undefined ? { ttlMs } : {}) });

describe("prompt cache", () => {
  test("the longest remembered prefix is read; the rest up to the last point is written", () => {
    const c = new PromptCache(() => 0);
    const first = c.match("m", [seg("sys", 1500, 300_000), seg("user A", 100, 300_000)], { minTokens: 1024 });
    assert.deepEqual([first.readTokens, first.writeTokens, first.totalTokens], [0, 1600, 1600]);
    const second = c.match("m", [seg("sys", 1500, 300_000), seg("user B", 80, 300_000)], { minTokens: 1024, roundTo: 128 });
    assert.deepEqual([second.readTokens, second.writeTokens], [1408, 80]);
    const other = c.match("other-model", [seg("sys", 1500, 300_000)], { minTokens: 1024 });
    assert.equal(other.readTokens, 0);
  });

  test("prefixes below the minimum are neither read nor written; segments without a point are not cached", () => {
    const c = new PromptCache(() => 0);
    c.match("m", [seg("short", 500, 1000)], { minTokens: 1024 });
    assert.equal(c.size, 0);
    c.match("m", [seg("long", 2000), seg("tail", 10, 1000)], { minTokens: 1024 });
    assert.equal(c.match("m", [seg("long", 2000), seg("other", 10, 1000)], { minTokens: 1024 }).readTokens, 0);
  });

  test("entries expire after their TTL; a hit refreshes it", () => {
    let now = 0;
    const c = new PromptCache(() => now);
    const p = [seg("sys", 2000, 300_000)];
    c.match("m", p, { minTokens: 1024 });
    now = 299_000;
    assert.equal(c.match("m", p, { minTokens: 1024 }).readTokens, 2000);
    now = 500_000; // 201 s after the refresh
    assert.equal(c.match("m", p, { minTokens: 1024 }).readTokens, 2000);
    now = 900_000;
    assert.equal(c.match("m", p, { minTokens: 1024 }).readTokens, 0);
  });

  test("segment boundaries are part of the key", () => {
    const c = new PromptCache(() => 0);
    c.match("m", [seg("ab", 1000), seg("c", 1000, 1000)], { minTokens: 0 });
    assert.equal(c.match("m", [seg("a", 1000), seg("bc", 1000, 1000)], { minTokens: 0 }).readTokens, 0);
  });
});
