import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoEmbedder } from "./memo.js";
import type { Embedder } from "./types.js";

test("a text is embedded once; whitespace variants share the memo; the oldest entries go first", async () => {
  const seen: string[] = [];
  const inner: Embedder = { id: "fake", dimensions: 2, embed: async (texts) => texts.map((t) => { seen.push(t); return [t.length, 1]; }) };
  const m = new MemoEmbedder(inner, 2);
  assert.deepEqual(await m.embed(["a b", "cc"]), [[3, 1], [2, 1]]);
  assert.deepEqual(await m.embed(["a  b ", "cc", "cc"]), [[3, 1], [2, 1], [2, 1]]);
  assert.deepEqual(seen, ["a b", "cc"]);
  await m.embed(["ddd"]); // evicts "a b"
  await m.embed(["a b"]);
  assert.deepEqual(seen, ["a b", "cc", "ddd", "a b"]);
  assert.equal(m.id, "fake");
});
