/**
 * QdrantStore through the real @qdrant/js-client-rest against the Qdrant TEST STAND-IN
 * (tools/qdrant-standin: in-memory, exact scan, Qdrant's REST shapes). This checks our use of the
 * client and of Qdrant's API as the spec describes it; it is not a test of Qdrant itself — see
 * qdrant.live.int.test.ts for that (runs when QDRANT_URL is set).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startQdrantStandin } from "@sieve/qdrant-standin";
import { CONTRACT_DIMENSIONS, vectorStoreContract } from "./contract.js";
import { QdrantStore, pointId } from "./qdrant.js";

const standin = await startQdrantStandin();
after(() => standin.close());
let n = 0;

vectorStoreContract(
  "QdrantStore (against the Qdrant stand-in)",
  async () => new QdrantStore({ url: standin.url, dimensions: CONTRACT_DIMENSIONS, collection: `contract_${++n}` }),
);

describe("QdrantStore specifics (stand-in)", () => {
  it("maps entry ids to stable UUID point ids", () => {
    assert.equal(pointId("abc"), pointId("abc"));
    assert.notEqual(pointId("abc"), pointId("abd"));
    assert.match(pointId("anything at all"), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it("refuses an existing collection of another vector size", async () => {
    const a = new QdrantStore({ url: standin.url, dimensions: 4, collection: "dims_check" });
    await a.init();
    const b = new QdrantStore({ url: standin.url, dimensions: 5, collection: "dims_check" });
    await assert.rejects(b.init(), /has 4-d Cosine vectors, the embedder makes 5-d ones/);
    await a.dropCollection();
  });
});
