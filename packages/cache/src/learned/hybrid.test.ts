import { test } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "@sieve/simulator/faults";
import type { CacheScope } from "../vector/types.js";
import { KnnClassifier } from "./classifier.js";
import { HybridClassifier } from "./hybrid.js";
import { LearnedCache } from "./cache.js";
import { textFeatures } from "./textFeatures.js";

const DIMS = 16;

function randomUnit(r: () => number): number[] {
  const v = Array.from({ length: DIMS }, () => r() - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const TOPICS: Record<string, string[]> = {
  sport: ["match", "goal", "league", "coach", "season", "striker"],
  money: ["bank", "loan", "interest", "shares", "market", "profit"],
  space: ["orbit", "rocket", "planet", "launch", "telescope", "moon"],
};
const FILLER = ["the", "a", "today", "report", "new", "said", "after", "week", "big", "news"];

/**
 * Texts whose topic is in their words, with vectors that carry no information at all (random):
 * what a text-blind model cannot learn and a text model can.
 */
function stream(seed: number, n: number): Array<{ v: number[]; text: string; label: string }> {
  const r = createRng(seed);
  const labels = Object.keys(TOPICS);
  return Array.from({ length: n }, () => {
    const label = labels[Math.floor(r() * labels.length)]!;
    const words = Array.from({ length: 8 }, (_, i) => (i % 3 === 0 ? TOPICS[label]! : FILLER)[Math.floor(r() * 6)]!);
    return { v: randomUnit(r), text: words.join(" "), label };
  });
}

function accuracy(c: { add(v: number[], l: string, t?: string): void; predict(v: number[], t?: string): { label: string } | undefined }, data: ReturnType<typeof stream>): number {
  for (const x of data.slice(0, 600)) c.add(x.v, x.label, x.text);
  const held = data.slice(600);
  return held.filter((x) => c.predict(x.v, x.text)?.label === x.label).length / held.length;
}

test("hybrid: separates classes by their words where a kNN on random vectors cannot", () => {
  const data = stream(1, 900);
  const knn = accuracy(new KnnClassifier(DIMS), data);
  const hybrid = accuracy(new HybridClassifier(DIMS), data);
  assert.ok(knn < 0.5, `knn on random vectors should be near chance (1/3), got ${knn}`);
  assert.ok(hybrid > 0.9, `hybrid accuracy ${hybrid}`);
  // Without a text it is the knn vote alone.
  const blind = new HybridClassifier(DIMS);
  for (const x of data.slice(0, 600)) blind.add(x.v, x.label, x.text);
  const p = blind.predict(data[700]!.v);
  const k = new KnnClassifier(DIMS);
  for (const x of data.slice(0, 600)) k.add(x.v, x.label);
  assert.equal(p?.label, k.predict(data[700]!.v)?.label);
});

test("hybrid: deterministic, and its confidence falls when text and neighbours disagree", () => {
  const data = stream(2, 700);
  const a = new HybridClassifier(DIMS);
  const b = new HybridClassifier(DIMS);
  for (const x of data.slice(0, 600)) {
    a.add(x.v, x.label, x.text);
    b.add(x.v, x.label, x.text);
  }
  for (const x of data.slice(600)) assert.deepEqual(a.predict(x.v, x.text), b.predict(x.v, x.text));
  // Neighbours all say "sport" (copies of one vector), the text says "space".
  const c = new HybridClassifier(DIMS, { k: 5 });
  const v = randomUnit(createRng(3));
  for (let i = 0; i < 5; i++) c.add(v, "sport", "match goal league coach");
  for (let i = 0; i < 40; i++) c.add(randomUnit(createRng(10 + i)), "space", "orbit rocket planet launch");
  const agree = c.predict(v, "match goal league season")!;
  const disagree = c.predict(v, "orbit rocket planet moon")!;
  assert.equal(agree.label, "sport");
  assert.ok(disagree.confidence < agree.confidence, `${disagree.confidence} vs ${agree.confidence}`);
});

test("hybrid: the example cap forgets old texts too", () => {
  // The text part made to dominate (heavy naive Bayes, a near-uniform vote): were "old" still in
  // the naive Bayes, its own words would bring it back.
  const c = new HybridClassifier(DIMS, { maxExamples: 50, k: 1, nbWeight: 1000, knnSmoothing: 100 });
  const r = createRng(4);
  for (let i = 0; i < 50; i++) c.add(randomUnit(r), "old", "alpha beta gamma");
  for (let i = 0; i < 50; i++) c.add(randomUnit(r), "new", "delta epsilon zeta");
  assert.equal(c.size, 50);
  assert.equal(c.predict(randomUnit(r), "alpha beta gamma")!.label, "new");
});

test("text features: case-insensitive, bounded to the bucket range, distinct", () => {
  const f = textFeatures("Rocket LAUNCH delayed", { bits: 12 });
  assert.deepEqual(f, textFeatures("rocket launch delayed", { bits: 12 }));
  assert.ok(f.every((x) => x < 4096));
  assert.equal(new Set(f).size, f.length);
  assert.notDeepEqual(f, textFeatures("rocket launch on time", { bits: 12 }));
});

test("learned cache, hybrid kind: answers from text, and never across scopes", () => {
  // The vectors carry nothing here, so the text part is given more weight than the default.
  const scope: CacheScope = { tenantId: "acme", namespace: "default", task: "classify", promptVersion: "p1", schemaVersion: "s1", provider: "openai", model: "m", paramsHash: "labels-a", embedderId: "test-16" };
  const cache = new LearnedCache({ maxError: 0.05, minExamples: 100, auditRate: 0, dimensions: DIMS, kind: "hybrid", classifier: { nbWeight: 50 } });
  const data = stream(5, 2500);
  let answered = 0;
  let wrong = 0;
  for (const x of data) {
    const a = cache.lookup(scope, x.v, x.text);
    if (!a) cache.learn(scope, x.v, x.label, x.text);
    else {
      answered++;
      if (a.label !== x.label) wrong++;
    }
  }
  assert.ok(answered > 500, `answered ${answered}`);
  assert.ok(wrong / answered <= 0.05, `error ${wrong}/${answered}`);
  for (const other of [{ ...scope, tenantId: "globex" }, { ...scope, paramsHash: "labels-b" }]) {
    assert.equal(data.slice(0, 200).filter((x) => cache.lookup(other, x.v, x.text)).length, 0);
  }
});
