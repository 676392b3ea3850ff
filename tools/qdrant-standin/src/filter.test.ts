import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { UnsupportedError, WrongInputError, matchesFilter, normaliseId } from "./filter.js";

const p = { tenant_id: "t1", tags: ["a", "b"], n: 5, nested: { k: "v" } };

describe("Qdrant stand-in filters", () => {
  it("must / should / must_not with match.value, match.any, range, has_id", () => {
    assert.equal(matchesFilter({ must: [{ key: "tenant_id", match: { value: "t1" } }] }, 1, p), true);
    assert.equal(matchesFilter({ must: [{ key: "tenant_id", match: { value: "t2" } }] }, 1, p), false);
    assert.equal(matchesFilter({ must: { key: "tags", match: { value: "b" } } }, 1, p), true, "array payload: any element");
    assert.equal(matchesFilter({ should: [{ key: "n", range: { gt: 5 } }, { key: "n", range: { lte: 5 } }] }, 1, p), true);
    assert.equal(matchesFilter({ should: [{ key: "n", range: { gt: 5 } }] }, 1, p), false);
    assert.equal(matchesFilter({ must_not: [{ key: "n", range: { gte: 5, lt: 6 } }] }, 1, p), false);
    assert.equal(matchesFilter({ must: [{ key: "missing", range: { gt: 0 } }] }, 1, p), false);
    assert.equal(matchesFilter({ must: [{ key: "tenant_id", match: { any: ["x", "t1"] } }] }, 1, p), true);
    assert.equal(matchesFilter({ must: [{ key: "nested.k", match: { value: "v" } }] }, 1, p), true);
    assert.equal(matchesFilter({ must: [{ has_id: [2, 1] }] }, 1, p), true);
    assert.equal(matchesFilter({ must: [{ has_id: [2] }] }, 1, p), false);
    assert.equal(matchesFilter({ must: [{ is_empty: { key: "missing" } }] }, 1, p), true);
    assert.equal(matchesFilter({ must: [{ must_not: [{ key: "n", match: { value: 5 } }] }] }, 1, p), false, "nested filter");
    assert.equal(matchesFilter(undefined, 1, p), true);
  });

  it("refuses what it does not implement instead of guessing", () => {
    assert.throws(() => matchesFilter({ must: [{ key: "t", match: { text: "x" } }] }, 1, p), UnsupportedError);
    assert.throws(() => matchesFilter({ must: [{ key: "t", geo_radius: {} }] }, 1, p), UnsupportedError);
    assert.throws(() => matchesFilter({ min_should: { conditions: [], min_count: 1 } }, 1, p), UnsupportedError);
    assert.throws(() => matchesFilter({ mustt: [] }, 1, p), WrongInputError);
  });

  it("accepts unsigned integer and UUID point ids only", () => {
    assert.equal(normaliseId(7), 7);
    assert.equal(normaliseId("5C56C793-69F3-4FBF-87E6-C4BF54C28C26"), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
    assert.equal(normaliseId("5c56c79369f34fbf87e6c4bf54c28c26"), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
    assert.throws(() => normaliseId(-1), WrongInputError);
    assert.throws(() => normaliseId("my-id"), WrongInputError);
  });
});
