import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchScheduler, EngineCrashed } from "./batching.js";

/** A scheduler on a hand-moved clock: nothing here waits on wall time. */
function clocked(limits: { maxNumSeqs: number; kvCacheTokens: number }, perf = {}) {
  let t = 0;
  const s = new BatchScheduler(limits, perf, () => t, false);
  return {
    s,
    advance(ms: number) {
      t += ms;
      s.advance();
    },
    get now() {
      return t;
    },
  };
}

/** Starts `n` requests of `out` output tokens (no prefill) and returns when each finished. */
async function launch(c: ReturnType<typeof clocked>, n: number, out: number, reserve = 100) {
  const done: number[] = [];
  const all = Array.from({ length: n }, async () => {
    const seq = await c.s.admit(reserve);
    await c.s.generate(seq, 0, out);
    done.push(c.now);
    c.s.release(seq);
  });
  return { done, all };
}

async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

test("one sequence decodes at 1 token per step: 100 tokens x 10.16 ms", async () => {
  const c = clocked({ maxNumSeqs: 8, kvCacheTokens: 10_000 });
  const { done, all } = await launch(c, 1, 100);
  await flush();
  c.advance(1_000);
  await flush();
  assert.equal(done.length, 0, "not finished after 1 s");
  c.advance(20);
  await all[0];
  assert.equal(done.length, 1);
});

test("throughput rises with concurrency and flattens; requests beyond max-num-seqs wait", async () => {
  const calib = new BatchScheduler({ maxNumSeqs: 256, kvCacheTokens: 1 }, undefined, () => 0, false);
  const tput = (b: number) => b / (calib.stepMs(b) / 1000);
  assert.ok(tput(2) > 1.9 * tput(1));
  assert.ok(tput(256) > 4_900 && tput(256) < 5_200, `full batch ~5,000 tok/s (${Math.round(tput(256))})`);

  const c = clocked({ maxNumSeqs: 4, kvCacheTokens: 1_000_000 });
  const { done } = await launch(c, 6, 10);
  await flush();
  assert.equal(c.s.numRunning, 4);
  assert.equal(c.s.numWaiting, 2);
  // 4 running: a step costs 10.64 ms, 10 steps = 106.4 ms.
  c.advance(106);
  await flush();
  assert.equal(done.length, 0);
  c.advance(1);
  await flush();
  assert.equal(done.length, 4);
  assert.equal(c.s.numRunning, 2);
  assert.equal(c.s.numWaiting, 0);
});

test("the KV cache bounds admission; usage is reserved / capacity", async () => {
  const c = clocked({ maxNumSeqs: 100, kvCacheTokens: 1_000 });
  await launch(c, 5, 10, 300);
  await flush();
  assert.equal(c.s.numRunning, 3, "3 x 300 fit in 1,000, the 4th does not");
  assert.equal(c.s.numWaiting, 2);
  assert.equal(c.s.kvUsage, 0.9);
});

test("prefill of uncached prompt tokens comes before the first token", async () => {
  const c = clocked({ maxNumSeqs: 4, kvCacheTokens: 100_000 });
  const seq = await c.s.admit(2_000);
  let first: number | undefined;
  const p = c.s.generate(seq, 2_000, 1).then((t) => (first = t));
  c.advance(99); // 2,000 tokens at 20,000/s = 100 ms
  await flush();
  assert.equal(first, undefined);
  c.advance(20);
  await p;
  assert.equal(first, 100);
});

test("a slowdown stretches steps; a crash fails running and waiting requests", async () => {
  const c = clocked({ maxNumSeqs: 1, kvCacheTokens: 100_000 });
  c.s.slowdown = 2;
  assert.equal(c.s.stepMs(1), 20.32);
  const a = c.s.admit(10).then((seq) => c.s.generate(seq, 0, 100));
  const b = c.s.admit(10);
  await flush();
  c.s.crash();
  await assert.rejects(a, EngineCrashed);
  await assert.rejects(b, EngineCrashed);
  assert.equal(c.s.numRunning, 0);
  assert.equal(c.s.kvUsage, 0);
});
