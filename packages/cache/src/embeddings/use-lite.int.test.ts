/** The embedded USE-lite model: loads from node_modules with no network, 512-d unit vectors. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { cosine } from "../vector/scope.js";
import { UseLiteEmbedder } from "./use-lite.js";

describe("UseLiteEmbedder", () => {
  const e = new UseLiteEmbedder({ batchSize: 3 });

  it("loads the local model (no network) and embeds to 512-d unit vectors", async () => {
    // Any attempt to download (the package's default source is tfhub.dev) fails loudly here:
    // global fetch and every TCP connect (node-fetch, http) are blocked while the model loads.
    const realFetch = globalThis.fetch;
    const realConnect = net.Socket.prototype.connect;
    globalThis.fetch = (() => Promise.reject(new Error("network used"))) as typeof fetch;
    net.Socket.prototype.connect = function () {
      throw new Error("network used");
    } as typeof realConnect;
    try {
      const vs = await e.embed(["How do I reset my password?", "", "Wie spät ist es?"]);
      assert.equal(vs.length, 3);
      for (const v of vs) {
        assert.equal(v.length, 512);
        assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-9);
      }
    } finally {
      globalThis.fetch = realFetch;
      net.Socket.prototype.connect = realConnect;
    }
  });

  it("puts paraphrases closer than unrelated texts, and batches give the same vectors as single calls", async () => {
    const texts = [
      "How do I reset my password?",
      "How can I change my password?",
      "What is the weather in Paris?",
      "My card has not arrived yet",
      "I still haven't received my card",
    ];
    const vs = await e.embed(texts);
    const [a, b, c, d, f] = vs as [number[], number[], number[], number[], number[]];
    assert.ok(cosine(a, b) > 0.8, `paraphrase ${cosine(a, b)}`);
    assert.ok(cosine(a, c) < 0.5, `unrelated ${cosine(a, c)}`);
    assert.ok(cosine(d, f) > cosine(d, c));
    const single = await e.embed([texts[4]!]);
    assert.ok(cosine(single[0]!, f) > 0.999999);
    assert.equal(e.id, "use-lite-512");
  });
});
