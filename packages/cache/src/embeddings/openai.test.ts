/**
 * OpenAIEmbedder against a tiny local server speaking the OpenAI `/v1/embeddings` wire format
 * (a stand-in for OpenAI / vLLM / TEI, none of which is reachable here).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ProviderError } from "@sieve/shared/errors";
import { OpenAIEmbedder } from "./openai.js";

interface Seen {
  auth: string | undefined;
  body: { model: string; input: string[]; dimensions?: number; encoding_format?: string };
}

/** Deterministic fake vectors: [len, vowels, 1] padded to `dims`, returned in shuffled order. */
function fakeVector(text: string, dims: number): number[] {
  const v = new Array<number>(dims).fill(0);
  v[0] = text.length;
  v[1] = (text.match(/[aeiou]/g) ?? []).length;
  v[2] = 1;
  return v;
}

describe("OpenAIEmbedder (OpenAI-compatible /v1/embeddings)", () => {
  let server: http.Server;
  let baseURL: string;
  const seen: Seen[] = [];
  let failNext: Array<{ status: number; headers?: Record<string, string>; body: string }> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let raw = "";
      req.on("data", (c: Buffer) => (raw += c.toString()));
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/v1/embeddings") {
          res.writeHead(404).end();
          return;
        }
        const body = JSON.parse(raw) as Seen["body"];
        seen.push({ auth: req.headers.authorization, body });
        const fail = failNext.shift();
        if (fail) {
          res.writeHead(fail.status, { "content-type": "application/json", ...fail.headers }).end(fail.body);
          return;
        }
        const dims = body.dimensions ?? 4;
        const data = body.input.map((text, index) => ({ object: "embedding", index, embedding: fakeVector(text, dims) }));
        data.reverse(); // order must come from `index`, not position
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ object: "list", data, model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("batches requests, keeps input order by `index`, and returns unit vectors", async () => {
    seen.length = 0;
    const e = new OpenAIEmbedder({ baseURL, apiKey: "sk-test-123456", model: "bge-small", dimensions: 4, batchSize: 2 });
    const texts = ["a", "bb", "ccc", "dddd", "eeeee"];
    const out = await e.embed(texts);
    assert.equal(seen.length, 3, "5 texts in batches of 2");
    assert.deepEqual(
      seen.map((s) => s.body.input),
      [["a", "bb"], ["ccc", "dddd"], ["eeeee"]],
    );
    assert.equal(seen[0]!.auth, "Bearer sk-test-123456");
    assert.equal(seen[0]!.body.encoding_format, "float");
    assert.equal(seen[0]!.body.dimensions, undefined, "not sent to non-OpenAI models by default");
    assert.equal(out.length, 5);
    texts.forEach((t, i) => {
      const raw = fakeVector(t, 4);
      const norm = Math.hypot(...raw);
      out[i]!.forEach((x, k) => assert.ok(Math.abs(x - raw[k]! / norm) < 1e-12));
      assert.ok(Math.abs(Math.hypot(...out[i]!) - 1) < 1e-12);
    });
    assert.equal(e.dimensions, 4);
    assert.match(e.id, /^openai-compat:127\.0\.0\.1:\d+:bge-small:4$/);
  });

  it("sends `dimensions` for text-embedding-3 models and knows their native sizes", async () => {
    seen.length = 0;
    const e = new OpenAIEmbedder({ baseURL, model: "text-embedding-3-small", dimensions: 8 });
    const [v] = await e.embed(["hello"]);
    assert.equal(seen[0]!.body.dimensions, 8);
    assert.equal(v!.length, 8);
    assert.equal(new OpenAIEmbedder({ model: "text-embedding-3-large" }).dimensions, 3072);
    assert.throws(() => new OpenAIEmbedder({ model: "my-model" }), /set "dimensions"/);
  });

  it("retries 429/5xx honouring Retry-After, then succeeds", async () => {
    seen.length = 0;
    failNext = [
      { status: 429, headers: { "retry-after-ms": "20" }, body: JSON.stringify({ error: { message: "slow down" } }) },
      { status: 503, body: "overloaded" },
    ];
    const e = new OpenAIEmbedder({ baseURL, model: "m", dimensions: 4, retryBaseMs: 5 });
    const out = await e.embed(["x"]);
    assert.equal(out.length, 1);
    assert.equal(seen.length, 3);
  });

  it("fails fast on a 4xx with the server's message, and on a wrong vector length", async () => {
    failNext = [{ status: 400, body: JSON.stringify({ error: { message: "input too long" } }) }];
    const e = new OpenAIEmbedder({ baseURL, model: "m", dimensions: 4 });
    await assert.rejects(e.embed(["x"]), (err: unknown) => {
      assert.ok(err instanceof ProviderError);
      assert.equal(err.kind, "client");
      assert.equal(err.status, 400);
      assert.match(err.message, /input too long/);
      return true;
    });
    // The server answers 4-d vectors; the embedder was configured for 6.
    const wrong = new OpenAIEmbedder({ baseURL, model: "m", dimensions: 6 });
    await assert.rejects(wrong.embed(["x"]), /has length 4, expected 6/);
  });

  it("gives up after maxAttempts on persistent 5xx", async () => {
    failNext = [
      { status: 500, body: "{}" },
      { status: 500, body: "{}" },
    ];
    const e = new OpenAIEmbedder({ baseURL, model: "m", dimensions: 4, maxAttempts: 2, retryBaseMs: 1 });
    await assert.rejects(e.embed(["x"]), (err: unknown) => err instanceof ProviderError && err.kind === "server");
  });
});
