import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { clopperPearsonUpper } from "../../packages/cache/src/learned/calibration.js";
import { crossFitBounds, type ReplayItem } from "./quality-cache.js";

/** Two well separated clusters (one per label) of unit vectors, with words typical of each label. */
function stream(n: number, mislabelled: ReadonlySet<number> = new Set(), llmSwapped = false): ReplayItem[] {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: n }, (_, i) => {
    const looksLike = i % 2 === 0 ? "sport" : "money";
    const v = new Float32Array(512);
    v[looksLike === "sport" ? 0 : 1] = 1;
    for (let d = 2; d < 512; d++) v[d] = (rnd() - 0.5) * 0.02;
    const norm = Math.hypot(...v);
    for (let d = 0; d < 512; d++) v[d]! /= norm;
    const gold = mislabelled.has(i) ? (looksLike === "sport" ? "money" : "sport") : looksLike;
    const text = looksLike === "sport" ? `match goal team ${i}` : `bank loan rate ${i}`;
    return { text, gold, llm: llmSwapped ? (gold === "sport" ? "money" : "sport") : gold, alone: gold, vector: v };
  });
}

describe("crossFitBounds (bench:quality)", () => {
  const opts = { kind: "hybrid", label: "gold", folds: 10, delta: 0.05, shares: [0.1, 0.5, 1] } as const;

  it("with no error the tightest bound is the Clopper-Pearson bound of zero errors over the whole stream", () => {
    const r = crossFitBounds(stream(400), opts);
    assert.equal(r.tightestAtShare, 1);
    assert.equal(r.tightestBound, clopperPearsonUpper(0, 400, 0.05));
    assert.deepEqual(r.cuts.map((c) => c.errors), [0, 0, 0]);
  });

  it("counts items whose gold label contradicts what they look like as errors, at every cut that holds them", () => {
    const planted = new Set([3, 50, 101, 202]);
    const r = crossFitBounds(stream(400, planted), opts);
    const all = r.cuts.find((c) => c.requested === 1)!;
    assert.equal(all.share, 1);
    assert.equal(all.errors, 4);
    assert.equal(all.upperBound, clopperPearsonUpper(4, 400, 0.05));
    for (const [a, b] of [[r.cuts[0]!, r.cuts[1]!], [r.cuts[1]!, r.cuts[2]!]] as const) {
      assert.ok(a.share <= b.share && a.errors <= b.errors);
      assert.ok(a.share >= a.requested);
    }
    assert.ok(r.tightestBound >= clopperPearsonUpper(0, 400, 0.05) && r.tightestBound <= all.upperBound);
  });

  it("trains on the LLM's labels when asked, and still counts errors against gold", () => {
    const swapped = stream(200, new Set(), true);
    assert.equal(crossFitBounds(swapped, { ...opts, label: "llm" }).cuts.at(-1)!.errors, 200);
    assert.equal(crossFitBounds(swapped, opts).cuts.at(-1)!.errors, 0);
  });
});
