import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CacheScope } from "../vector/types.js";
import { LearnedCache } from "./cache.js";
import { binomialCdf, clopperPearsonUpper, ThresholdCalibrator } from "./calibration.js";
import { createRng } from "@sieve/simulator/faults";

/** The simulator's seeded PRNG (mulberry32): the same draws every run. */
const mulberry32 = createRng;

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const DIMS = 24;

/**
 * A labelled stream: `classes` cluster centres, points = centre + gaussian noise (unit-scaled).
 * Clusters overlap at this noise, so a local model is wrong on part of the stream: the threshold
 * has real work to do.
 */
function stream(seed: number, n: number, classes = 8, noise = 0.34): Array<{ v: number[]; label: string }> {
  const r = mulberry32(seed);
  const centres = Array.from({ length: classes }, () => unit(Array.from({ length: DIMS }, () => gauss(r))));
  const cr = mulberry32(seed + 1);
  return Array.from({ length: n }, () => {
    const c = Math.floor(cr() * classes);
    return { v: unit(centres[c]!.map((x) => x + noise * gauss(cr))), label: `L${c}` };
  });
}

const scope = (over: Partial<CacheScope> = {}): CacheScope => ({
  tenantId: "acme",
  namespace: "default",
  task: "classify",
  promptVersion: "p1",
  schemaVersion: "s1",
  provider: "openai",
  model: "gpt-4.1-mini",
  paramsHash: "labels-a",
  embedderId: "test-24",
  ...over,
});

describe("learned cache", () => {
  test("never answers before its warm-up, however clear the item", () => {
    const cache = new LearnedCache({ maxError: 0.05, minExamples: 400, auditRate: 0.05, dimensions: DIMS });
    const data = stream(1, 1200, 4, 0.05); // well separated: certified quickly once allowed
    let firstAnswerAt = -1;
    data.forEach((x, i) => {
      const a = cache.lookup(scope(), x.v);
      if (a && firstAnswerAt < 0) firstAnswerAt = i;
      if (!a) cache.learn(scope(), x.v, x.label);
    });
    assert.ok(firstAnswerAt >= 400, `answered at item ${firstAnswerAt}, before 400 examples`);
    assert.ok(firstAnswerAt > 0 && firstAnswerAt < 700, `answered first at ${firstAnswerAt}`);
  });

  test("calibration points come only from a model past its warm-up", () => {
    const cache = new LearnedCache({ maxError: 0.05, minExamples: 300, auditRate: 0, dimensions: DIMS });
    for (const x of stream(8, 400)) cache.learn(scope(), x.v, x.label);
    const st = cache.stats(scope())!;
    assert.equal(st.examples, 400);
    assert.equal(st.calibrationPoints, 100, "the first 300 labels trained the model but were no points");
  });

  test("reports where each scope stands (warming up, uncertified, answering), to its own tenant only", () => {
    const cache = new LearnedCache({ maxError: 0.05, minExamples: 100, auditRate: 0, dimensions: DIMS });
    const clear = stream(5, 600, 4, 0.05);
    for (const x of clear.slice(0, 50)) cache.learn(scope(), x.v, x.label);
    let [only] = cache.scopesOf("acme");
    assert.equal(only!.stats.state, "warming-up");
    assert.equal(only!.stats.examples, 50);
    assert.equal(only!.stats.threshold, undefined);
    for (const x of clear.slice(50)) cache.learn(scope(), x.v, x.label);
    [only] = cache.scopesOf("acme");
    assert.equal(only!.stats.state, "answering");
    assert.ok(only!.stats.threshold !== undefined);
    assert.deepEqual(only!.stats.labels, ["L0", "L1", "L2", "L3"]);
    assert.equal(only!.scope.paramsHash, "labels-a");
    // Warm but labelled at random: no threshold passes the bound, so it stays silent.
    const r = mulberry32(9);
    for (const x of stream(6, 300, 4, 0.05)) cache.learn(scope({ paramsHash: "labels-noisy" }), x.v, `L${Math.floor(r() * 4)}`);
    const acme = cache.scopesOf("acme");
    assert.deepEqual(acme.map((s) => [s.scope.paramsHash, s.stats.state]), [["labels-noisy", "uncertified"], ["labels-a", "answering"]], "most recently used first");
    assert.equal(cache.lookup(scope({ paramsHash: "labels-noisy" }), clear[0]!.v), undefined);
    // Another tenant sees none of them, and only its own once it has one.
    assert.deepEqual(cache.scopesOf("globex"), []);
    cache.learn(scope({ tenantId: "globex" }), clear[0]!.v, "other");
    assert.deepEqual(cache.scopesOf("globex").map((s) => [s.scope.tenantId, s.stats.examples, s.stats.labels]), [["globex", 1, ["other"]]]);
    assert.equal(cache.scopesOf("acme").length, 2);
  });

  test("never answers across tenants or label sets", () => {
    const cache = new LearnedCache({ maxError: 0.05, minExamples: 100, auditRate: 0.05, dimensions: DIMS });
    const data = stream(2, 1500, 4, 0.05);
    for (const x of data) cache.learn(scope(), x.v, x.label);
    const probe = data.slice(0, 200);
    assert.ok(probe.filter((x) => cache.lookup(scope(), x.v)).length > 150, "the trained scope answers");
    for (const other of [scope({ tenantId: "globex" }), scope({ paramsHash: "labels-b" }), scope({ namespace: "n2" }), scope({ embedderId: "other-24" }), scope({ model: "gpt-4.1" })]) {
      assert.equal(probe.filter((x) => cache.lookup(other, x.v)).length, 0, JSON.stringify(other));
    }
    // Another tenant with its own (different) labels for the same vectors gets its own answers only.
    const b = scope({ tenantId: "globex" });
    for (const x of data) cache.learn(b, x.v, `other-${x.label}`);
    const answers = probe.map((x) => cache.lookup(b, x.v)).filter((a) => a !== undefined);
    assert.ok(answers.length > 150);
    for (const a of answers) assert.match(a.label, /^other-L\d$/);
  });

  test("keeps its measured error under the bound on a held-back split", () => {
    for (const [seed, maxError] of [
      [3, 0.02],
      [4, 0.05],
    ] as const) {
      const cache = new LearnedCache({ maxError, minExamples: 300, auditRate: 0.1, dimensions: DIMS });
      const all = stream(seed, 9000);
      const train = all.slice(0, 6000);
      const held = all.slice(6000);
      const audit = mulberry32(seed + 7);
      for (const x of train) {
        const a = cache.lookup(scope(), x.v);
        if (!a) cache.learn(scope(), x.v, x.label);
        else if (audit() < 0.1) cache.audit(scope(), x.v, a, x.label);
      }
      // The raw model is far worse than the bound: the threshold is what keeps the error down.
      let rawWrong = 0;
      let answered = 0;
      let wrong = 0;
      for (const x of held) {
        const a = cache.lookup(scope(), x.v);
        if (!a) continue;
        answered++;
        if (a.label !== x.label) wrong++;
      }
      const st = cache.stats(scope())!;
      assert.ok(st.threshold !== undefined, `no threshold certified for bound ${maxError}`);
      const probe = new LearnedCache({ maxError: 0.5, minExamples: 1, auditRate: 0, dimensions: DIMS, kind: "knn" });
      for (const x of train) probe.learn(scope(), x.v, x.label);
      for (const x of held.slice(0, 1000)) {
        const p = probe.lookup(scope(), x.v);
        if (!p || p.label !== x.label) rawWrong++;
      }
      assert.ok(rawWrong / 1000 > 2 * maxError, `raw error ${rawWrong / 1000} should exceed the bound by far`);
      assert.ok(answered / held.length > 0.1, `answered ${answered}/${held.length}`);
      assert.ok(wrong / answered <= maxError, `error ${wrong}/${answered} over the bound ${maxError}`);
    }
  });
});

describe("learned cache: adjudication of packed labels", () => {
  /** Clear clusters, but 10% of the packed labels are wrong; an answer alone is wrong 2% of the time. */
  function noisy(seed: number, n: number) {
    const r = mulberry32(seed + 100);
    const flip = (label: string, p: number) => (r() < p ? `L${(Number(label.slice(1)) + 1) % 4}` : label);
    return stream(seed, n, 4, 0.05).map((x) => ({ ...x, packed: flip(x.label, 0.1), alone: flip(x.label, 0.02) }));
  }

  function run(adjudicate: boolean, askAlone: boolean) {
    const cache = new LearnedCache({ maxError: 0.05, minExamples: 300, auditRate: 0, dimensions: DIMS, ...(adjudicate ? { adjudicateAbove: 0.5 } : {}) });
    let answered = 0;
    let wrong = 0;
    for (const x of noisy(6, 4000)) {
      const a = cache.lookup(scope(), x.v);
      if (a) {
        answered++;
        if (a.label !== x.label) wrong++;
        continue;
      }
      const pending = cache.learn(scope(), x.v, x.packed, undefined, true);
      if (pending) cache.adjudicate(scope(), pending, askAlone ? x.alone : undefined);
    }
    return { answered, wrong, stats: cache.stats(scope())! };
  }

  test("a packed label's own errors keep a 5% bound from certifying; adjudicated, it certifies and stays under it", () => {
    const plain = run(false, true);
    assert.equal(plain.answered, 0, "10% wrong labels: disagreement alone exceeds the bound");
    const adjudicated = run(true, true);
    assert.ok(adjudicated.answered > 2000, `answered ${adjudicated.answered}`);
    assert.ok(adjudicated.wrong / adjudicated.answered <= 0.05, `error ${adjudicated.wrong}/${adjudicated.answered}`);
    assert.ok(adjudicated.stats.adjudications >= 5 && adjudicated.stats.adjudicatedForModel >= 0.7 * adjudicated.stats.adjudications, JSON.stringify(adjudicated.stats));
  });

  test("a disagreement whose answer alone never came counts as an error", () => {
    const failed = run(true, false);
    assert.equal(failed.answered, 0);
    assert.equal(failed.stats.adjudicatedForModel, 0);
  });
});

describe("threshold calibration", () => {
  test("binomial tail and Clopper-Pearson match known values", () => {
    assert.ok(Math.abs(binomialCdf(0, 299, 0.01) - Math.pow(0.99, 299)) < 1e-12);
    // Zero failures in n: upper bound 1 - delta^(1/n) ("rule of three" ~ 3/n at delta 0.05).
    assert.ok(Math.abs(clopperPearsonUpper(0, 300, 0.05) - (1 - Math.pow(0.05, 1 / 300))) < 1e-6);
    assert.ok(Math.abs(binomialCdf(3, 10, 0.5) - 176 / 1024) < 1e-12);
  });

  test("no threshold without enough evidence; the threshold excludes the error-prone region", () => {
    const c = new ThresholdCalibrator({ maxError: 0.01, recomputeEvery: 1 });
    assert.equal(c.minPoints, 299);
    for (let i = 0; i < 298; i++) c.add(0.99, true);
    assert.equal(c.threshold(), undefined, "298 correct points cannot certify 1%");
    c.add(0.99, true);
    assert.equal(c.threshold(), 0.99);
    // Below 0.9 every other answer is wrong: the threshold must stay above that region.
    for (let i = 0; i < 2000; i++) c.add(0.9 + (i % 90) / 1000, true);
    for (let i = 0; i < 400; i++) c.add(0.5 + (i % 40) / 100, i % 2 === 0);
    const t = c.threshold()!;
    assert.ok(t >= 0.85 && t <= 0.95, `threshold ${t}`);
    assert.ok(c.errorAbove(t).errorRate <= 0.01);
  });
});
