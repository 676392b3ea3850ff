/**
 * The flush policy of the aggregator's bins, on a fake clock: when a bin is full (items, tokens),
 * when it is due (max wait), what one call takes, per batch key and per task.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { BatchPolicy, TaskName } from "@sieve/shared";
import { Bins, dueInMs, isFull, nextCallSize, perTaskPolicy, withItemLimit, type Clock } from "./bins.js";

/** Time moves only when the test says so; timers fire in order of due time, then of arming. */
class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void; live: boolean }> = [];

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.t + ms, seq: this.seq++, fn, live: true };
    this.timers.push(timer);
    return () => {
      timer.live = false;
    };
  }

  /** Moves time forward by `ms`, firing every timer due by then (including ones armed meanwhile). */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => x.live && x.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      next.live = false;
      this.t = next.at;
      next.fn();
    }
    this.timers = this.timers.filter((x) => x.live);
    this.t = until;
  }

  /** Timers armed and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((x) => x.live).length;
  }
}

interface Item {
  id: string;
  tokens: number;
}

interface First {
  name: string;
  params: { task: TaskName };
}

const policy: BatchPolicy = { maxItems: 3, maxTokens: 1_000, maxWaitMs: 1_000 };

function setup(opts: { policy?: BatchPolicy; policies?: Record<TaskName, BatchPolicy>; maxItemsFor?: (key: string) => number | undefined } = {}) {
  const clock = new FakeClock();
  const calls: Array<{ key: string; first: string; ids: string[]; at: number }> = [];
  const policies = opts.policies ?? { classify: opts.policy ?? policy, translate: opts.policy ?? policy };
  const bins = new Bins<Item & { key: string }, First>({
    clock,
    tokensOf: (it) => it.tokens,
    policyOf: perTaskPolicy<First>(policies, opts.maxItemsFor),
    launch: (first, items) => calls.push({ key: items[0]!.key, first: first.name, ids: items.map((i) => i.id), at: clock.now() }),
  });
  const classify = (name: string): First => ({ name, params: { task: "classify" } });
  /** One parcel: ids of its items, all of `tokens` tokens unless given as "id:tokens". */
  const add = (key: string, ids: string[], first: First = classify(key), tokens = 10) =>
    bins.add(
      key,
      first,
      ids.map((s) => {
        const [id, t] = s.split(":");
        return { key, id: id!, tokens: t === undefined ? tokens : Number(t) };
      }),
    );
  const idsOfCalls = () => calls.map((c) => c.ids);
  return { clock, calls, bins, add, classify, idsOfCalls };
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe("bins: full at maxItems", () => {
  test("a bin is flushed the moment it holds maxItems items, with its oldest items", () => {
    const s = setup();
    s.add("k", ["a", "b"]);
    assert.deepEqual(s.idsOfCalls(), [], "two of three: waits");
    s.clock.advance(10);
    s.add("k", ["c"]);
    assert.deepEqual(s.idsOfCalls(), [["a", "b", "c"]], "launched synchronously from add");
    assert.equal(s.bins.size, 0, "an emptied bin is gone");
    assert.equal(s.clock.pending, 0, "and so is its timer");
  });

  test("a parcel bigger than maxItems goes out in several calls at once; the remainder waits", () => {
    const s = setup();
    s.add("k", range("x", 7));
    assert.deepEqual(s.idsOfCalls(), [["x0", "x1", "x2"], ["x3", "x4", "x5"]]);
    assert.equal(s.bins.size, 1);
    s.clock.advance(999);
    assert.equal(s.calls.length, 2);
    s.clock.advance(1);
    assert.deepEqual(s.idsOfCalls().at(-1), ["x6"], "the remainder goes when its maxWaitMs is up");
  });

  test("items leave in arrival order across parcels", () => {
    const s = setup({ policy: { ...policy, maxItems: 4 } });
    s.add("k", ["a", "b"], s.classify("p1"));
    s.add("k", ["c", "d", "e"], s.classify("p2"));
    assert.deepEqual(s.calls, [{ key: "k", first: "p1", ids: ["a", "b", "c", "d"], at: 0 }], "the bin's first parcel stands for the call");
    s.clock.advance(1_000);
    assert.deepEqual(s.calls[1], { key: "k", first: "p1", ids: ["e"], at: 1_000 }, "still the first parcel's bin: it never emptied");
    s.add("k", ["f"], s.classify("p3"));
    s.clock.advance(1_000);
    assert.equal(s.calls[2]!.first, "p3", "an emptied bin is new again: the next parcel stands for it");
  });
});

describe("bins: full at maxTokens", () => {
  const tokenPolicy: BatchPolicy = { maxItems: 50, maxTokens: 100, maxWaitMs: 1_000 };

  test("the token budget closes a bin before maxItems; the call takes only the items that fit", () => {
    const s = setup({ policy: tokenPolicy });
    s.add("k", ["a", "b"], undefined, 40);
    assert.equal(s.calls.length, 0, "80 of 100 tokens: waits");
    s.clock.advance(200);
    s.add("k", ["c"], undefined, 40);
    assert.deepEqual(s.idsOfCalls(), [["a", "b"]], "120 tokens: full, and a call holds at most 100");
    s.clock.advance(999);
    assert.equal(s.calls.length, 1, "c waits maxWaitMs from its own arrival");
    s.clock.advance(1);
    assert.deepEqual(s.idsOfCalls(), [["a", "b"], ["c"]]);
  });

  test("tokens exactly at the budget fill a bin, and both items go", () => {
    const s = setup({ policy: tokenPolicy });
    s.add("k", ["a"], undefined, 50);
    assert.equal(s.calls.length, 0);
    s.add("k", ["b"], undefined, 50);
    assert.deepEqual(s.idsOfCalls(), [["a", "b"]]);
  });

  test("one item over the budget alone never fills a bin: it waits for its time, then goes alone", () => {
    const s = setup({ policy: tokenPolicy });
    s.add("k", ["big:500"]);
    assert.equal(s.calls.length, 0);
    s.clock.advance(1_000);
    assert.deepEqual(s.idsOfCalls(), [["big"]]);
  });

  test("a small item then one over the budget: the small one goes, the big one waits from its own arrival", () => {
    const s = setup({ policy: tokenPolicy });
    s.add("k", ["small:10"]);
    s.clock.advance(100);
    s.add("k", ["big:500"]);
    assert.deepEqual(s.idsOfCalls(), [["small"]]);
    s.clock.advance(999);
    assert.equal(s.calls.length, 1);
    s.clock.advance(1);
    assert.deepEqual(s.calls[1], { key: "k", first: "k", ids: ["big"], at: 1_100 });
  });

  test("one over the budget then a small item: the big one goes alone, the small one waits", () => {
    const s = setup({ policy: tokenPolicy });
    s.add("k", ["big:500"]);
    s.clock.advance(100);
    s.add("k", ["small:10"]);
    assert.deepEqual(s.idsOfCalls(), [["big"]]);
    s.clock.advance(1_000);
    assert.deepEqual(s.calls[1], { key: "k", first: "k", ids: ["small"], at: 1_100 });
  });
});

describe("bins: due at maxWaitMs", () => {
  test("the oldest item's wait counts: items that came later go with it", () => {
    const s = setup();
    s.add("k", ["a"]);
    s.clock.advance(600);
    s.add("k", ["b"]);
    s.clock.advance(399);
    assert.equal(s.calls.length, 0);
    s.clock.advance(1);
    assert.deepEqual(s.calls, [{ key: "k", first: "k", ids: ["a", "b"], at: 1_000 }]);
    assert.equal(s.bins.size, 0);
  });

  test("after a flush the wait restarts from the oldest item left", () => {
    const s = setup({ policy: { ...policy, maxItems: 2 } });
    s.add("k", ["a"]);
    s.clock.advance(600);
    s.add("k", ["b", "c"]);
    assert.deepEqual(s.idsOfCalls(), [["a", "b"]]);
    s.clock.advance(999);
    assert.equal(s.calls.length, 1);
    s.clock.advance(1);
    assert.deepEqual(s.calls[1], { key: "k", first: "k", ids: ["c"], at: 1_600 });
  });

  test("a bin emptied by a full flush has no timer left: the next item starts a new wait", () => {
    const s = setup({ policy: { ...policy, maxItems: 2 } });
    s.add("k", ["a", "b", "c"]);
    s.clock.advance(500);
    s.add("k", ["d"]);
    assert.deepEqual(s.idsOfCalls(), [["a", "b"], ["c", "d"]], "c and d fill the bin before c is due");
    s.add("k", ["e"]);
    s.clock.advance(1_000);
    assert.deepEqual(s.calls[2], { key: "k", first: "k", ids: ["e"], at: 1_500 });
  });
});

describe("bins: per batch key and per task", () => {
  test("bins of different batch keys fill and fall due independently", () => {
    const s = setup({ policy: { ...policy, maxItems: 2 } });
    s.add("A", ["a1"]);
    s.clock.advance(500);
    s.add("B", ["b1"]);
    s.add("A", ["a2"]);
    assert.deepEqual(s.calls, [{ key: "A", first: "A", ids: ["a1", "a2"], at: 500 }], "A full; B untouched");
    assert.equal(s.bins.size, 1);
    s.add("A", ["a3"]);
    s.clock.advance(999);
    assert.equal(s.calls.length, 1);
    s.clock.advance(1);
    assert.deepEqual(s.calls.slice(1), [
      { key: "B", first: "B", ids: ["b1"], at: 1_500 },
      { key: "A", first: "A", ids: ["a3"], at: 1_500 },
    ]);
  });

  test("each task has its own maxItems, maxTokens and maxWaitMs; the bin's first parcel gives its task", () => {
    const s = setup({
      policies: {
        classify: { maxItems: 50, maxTokens: 300, maxWaitMs: 400 },
        translate: { maxItems: 3, maxTokens: 10_000, maxWaitMs: 5_000 },
      },
    });
    const translate = (name: string): First => ({ name, params: { task: "translate" } });
    s.add("c", range("c", 4));
    s.add("t", range("t", 7), translate("t"));
    assert.deepEqual(s.idsOfCalls(), [["t0", "t1", "t2"], ["t3", "t4", "t5"]], "translate packs 3 per call; classify's 4 wait");
    s.add("c", range("big", 30), undefined, 10);
    assert.deepEqual(s.calls.slice(2).map((c) => c.ids.length), [30], "classify: 34 items of 10 tokens fill 300 tokens with 30 items");
    s.clock.advance(400);
    assert.deepEqual(s.calls.slice(3).map((c) => [c.key, c.ids.length, c.at]), [["c", 4, 400]], "classify's rest after 400 ms");
    s.clock.advance(4_600);
    assert.deepEqual(s.calls.slice(4).map((c) => [c.key, c.ids, c.at]), [["t", ["t6"], 5_000]], "translate's after 5 s");
  });
});

describe("bins: a batch key's item limit (re-check controller)", () => {
  test("the limit lowers the task's maxItems, never below 1, never above the task's", () => {
    assert.deepEqual(withItemLimit(policy, undefined), policy);
    assert.equal(withItemLimit(policy, 2).maxItems, 2);
    assert.equal(withItemLimit(policy, 0).maxItems, 1);
    assert.equal(withItemLimit(policy, 10).maxItems, 3);
    assert.deepEqual(withItemLimit(policy, 2), { ...policy, maxItems: 2 }, "tokens and wait unchanged");
  });

  test("a limit lowered while a bin waits applies at its next decision", () => {
    const limits = new Map<string, number>();
    const s = setup({ policy: { ...policy, maxItems: 10 }, maxItemsFor: (k) => limits.get(k) });
    s.add("k", range("x", 4));
    limits.set("k", 3);
    assert.equal(s.calls.length, 0, "nothing happens until an arrival or the timer");
    s.clock.advance(1_000);
    assert.deepEqual(s.calls.map((c) => [c.ids.length, c.at]), [[3, 1_000], [1, 1_000]], "at its time: one call of 3, then the overdue rest at once");
  });

  test("an arrival after the limit was lowered flushes under the new limit", () => {
    const limits = new Map<string, number>();
    const s = setup({ policy: { ...policy, maxItems: 10 }, maxItemsFor: (k) => limits.get(k) });
    s.add("k", range("x", 4));
    limits.set("k", 3);
    s.clock.advance(100);
    s.add("k", ["y"]);
    assert.deepEqual(s.idsOfCalls(), [["x0", "x1", "x2"]]);
    s.clock.advance(899);
    assert.equal(s.calls.length, 1);
    s.clock.advance(1);
    assert.deepEqual(s.calls[1]!.ids, ["x3", "y"], "the rest is due after the oldest one's wait");
  });
});

describe("bins: drain", () => {
  test("drain sends every waiting item now, one call's worth at a time, and no timer is left", () => {
    const s = setup({ policy: { ...policy, maxItems: 3 } });
    s.add("A", range("a", 2));
    s.add("B", ["b0"]);
    s.bins.drain();
    assert.deepEqual(s.idsOfCalls(), [["a0", "a1"], ["b0"]]);
    assert.equal(s.bins.size, 0);
    assert.equal(s.clock.pending, 0);
    s.clock.advance(10_000);
    assert.equal(s.calls.length, 2);
  });

  test("drain splits a bin that holds more than one call's worth by the caps", () => {
    const limits = new Map<string, number>();
    const s = setup({ policy: { ...policy, maxItems: 10 }, maxItemsFor: (k) => limits.get(k) });
    s.add("k", range("x", 5));
    limits.set("k", 2);
    s.bins.drain();
    assert.deepEqual(s.idsOfCalls(), [["x0", "x1"], ["x2", "x3"], ["x4"]]);
  });

  test("items that arrive after a drain still wait for a full bin or their time", () => {
    const s = setup();
    s.bins.drain();
    s.add("k", ["a"]);
    assert.equal(s.calls.length, 0);
    s.add("k", range("x", 6));
    assert.deepEqual(s.idsOfCalls(), [["a", "x0", "x1"], ["x2", "x3", "x4"]]);
    s.clock.advance(1_000);
    assert.deepEqual(s.idsOfCalls().at(-1), ["x5"]);
  });

  test("a parcel with no items to send leaves no bin", () => {
    const s = setup();
    s.add("k", []);
    assert.equal(s.bins.size, 0);
    assert.equal(s.clock.pending, 0);
  });
});

describe("bins: the decisions", () => {
  const p: BatchPolicy = { maxItems: 3, maxTokens: 100, maxWaitMs: 1_000 };
  const items = (...tokens: number[]) => tokens.map((t) => ({ tokens: t }));

  test("isFull: maxItems items, or at least two items with maxTokens tokens", () => {
    assert.equal(isFull(0, 0, p), false);
    assert.equal(isFull(2, 99, p), false);
    assert.equal(isFull(3, 3, p), true);
    assert.equal(isFull(2, 100, p), true);
    assert.equal(isFull(1, 5_000, p), false, "one item is never full by tokens");
  });

  test("nextCallSize: up to maxItems, within maxTokens, the first item always", () => {
    assert.equal(nextCallSize(items(), p), 0);
    assert.equal(nextCallSize(items(10, 10, 10, 10), p), 3);
    assert.equal(nextCallSize(items(40, 40, 40), p), 2);
    assert.equal(nextCallSize(items(50, 50), p), 2, "exactly the budget fits");
    assert.equal(nextCallSize(items(500, 10), p), 1, "over the budget alone: goes alone");
    assert.equal(nextCallSize(items(10, 500, 10), p), 1, "stops at the first item that does not fit: never skips ahead");
  });

  test("dueInMs: what is left of maxWaitMs since the oldest item arrived, never negative", () => {
    assert.equal(dueInMs(0, 0, p), 1_000);
    assert.equal(dueInMs(0, 400, p), 600);
    assert.equal(dueInMs(0, 1_000, p), 0);
    assert.equal(dueInMs(0, 5_000, p), 0);
  });
});
