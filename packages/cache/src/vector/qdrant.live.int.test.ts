/**
 * The contract against a REAL Qdrant server. Runs only when QDRANT_URL is set (e.g.
 * QDRANT_URL=http://127.0.0.1:6333, optional QDRANT_API_KEY); each store gets a throw-away
 * collection that is dropped afterwards.
 */
import { describe, it } from "node:test";
import { randomBytes } from "node:crypto";
import { CONTRACT_DIMENSIONS, vectorStoreContract } from "./contract.js";
import { QdrantStore } from "./qdrant.js";

const url = process.env.QDRANT_URL;
if (!url) {
  describe("QdrantStore against a live Qdrant", () => {
    it("skipped: set QDRANT_URL (e.g. http://127.0.0.1:6333) to run the vector-store contract against a real Qdrant", { skip: "QDRANT_URL is not set" }, () => {});
  });
} else {
  const created: QdrantStore[] = [];
  const prefix = `sieve_contract_${randomBytes(4).toString("hex")}`;
  let n = 0;
  vectorStoreContract(
    `QdrantStore (live Qdrant at ${url})`,
    async () => {
      const s = new QdrantStore({ url, apiKey: process.env.QDRANT_API_KEY, dimensions: CONTRACT_DIMENSIONS, collection: `${prefix}_${++n}` });
      created.push(s);
      return s;
    },
    { teardown: async () => void (await Promise.allSettled(created.map((s) => s.dropCollection()))) },
  );
}
