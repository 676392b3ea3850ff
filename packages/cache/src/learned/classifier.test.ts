import { test } from "node:test";
import assert from "node:assert/strict";
import { CentroidClassifier, KnnClassifier } from "./classifier.js";

const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

test("knn: votes of near neighbours win; confidence grows with agreement and examples", () => {
  const c = new KnnClassifier(3, { k: 3 });
  assert.equal(c.predict(unit([1, 0, 0])), undefined);
  c.add(unit([1, 0.1, 0]), "a");
  const one = c.predict(unit([1, 0, 0]))!;
  assert.equal(one.label, "a");
  c.add(unit([1, 0, 0.1]), "a");
  c.add(unit([1, 0.05, 0.05]), "a");
  const three = c.predict(unit([1, 0, 0]))!;
  assert.ok(three.confidence > one.confidence, "missing neighbours count against the winner");
  c.add(unit([0, 1, 0]), "b");
  assert.equal(c.predict(unit([0.1, 1, 0]))!.label, "b");
});

test("the example cap drops the oldest examples, for both models", () => {
  for (const Ctor of [KnnClassifier, CentroidClassifier]) {
    const capped = new Ctor(2, { maxExamples: 4, k: 1 });
    // Four old "a" examples near (1, 0), then four "b" examples at the same place: only "b" remains.
    for (let i = 0; i < 4; i++) capped.add(unit([1, 0.01 * i]), "a");
    for (let i = 0; i < 4; i++) capped.add(unit([1, 0.01 * i + 0.001]), "b");
    assert.equal(capped.size, 4);
    assert.equal(capped.predict(unit([1, 0]))!.label, "b", Ctor.name);
    const p = capped.predict(unit([1, 0]))!;
    assert.ok(p.confidence > 0.99, `${Ctor.name}: no trace of the dropped label (${p.confidence})`);
  }
});
