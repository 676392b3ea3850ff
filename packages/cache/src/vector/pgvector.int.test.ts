/**
 * PgVectorStore against a real PGlite (embedded Postgres + pgvector): the shared contract, once
 * with the HNSW index and once with exact scans, plus what only this backend does.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { CONTRACT_DIMENSIONS, vectorStoreContract } from "./contract.js";
import { PgVectorStore } from "./pgvector.js";

// One in-memory PGlite for the file, one table per store.
const db = await PGlite.create("memory://", { extensions: { vector } });
after(() => db.close());
let n = 0;

// exactScanBelow 0: every query goes through the HNSW index, however small the table.
vectorStoreContract("PgVectorStore (pgvector in PGlite, HNSW index)", async () =>
  new PgVectorStore({ pglite: db, dimensions: CONTRACT_DIMENSIONS, table: `sc_hnsw_${++n}`, exactScanBelow: 0 }),
);
// Default plan choice: these small scopes are searched exactly through the scope index.
vectorStoreContract("PgVectorStore (pgvector in PGlite, HNSW index, default plan choice)", async () =>
  new PgVectorStore({ pglite: db, dimensions: CONTRACT_DIMENSIONS, table: `sc_default_${++n}` }),
);
vectorStoreContract(
  "PgVectorStore (pgvector in PGlite, exact scan)",
  async () => new PgVectorStore({ pglite: db, dimensions: CONTRACT_DIMENSIONS, table: `sc_exact_${++n}`, index: "none" }),
);

describe("PgVectorStore specifics", () => {
  let own: PgVectorStore;
  before(async () => {
    own = new PgVectorStore({ dimensions: 4 });
    await own.init();
  });
  after(() => own.close());

  it("opens and closes its own in-memory PGlite when none is given", async () => {
    assert.equal(await own.count(), 0);
  });

  it("refuses a table created for another vector size", async () => {
    await own.pglite.exec("create table sc_dims (x int)");
    const a = new PgVectorStore({ pglite: own.pglite, dimensions: 4, table: "sc_dim_check" });
    await a.init();
    const b = new PgVectorStore({ pglite: own.pglite, dimensions: 5, table: "sc_dim_check" });
    await assert.rejects(b.init(), /stores 4-d vectors but the embedder makes 5-d ones/);
  });

  it("searches big scopes through the HNSW index and small ones exactly", async () => {
    const s = new PgVectorStore({ pglite: own.pglite, dimensions: 4, table: "sc_plans", exactScanBelow: 20 });
    await s.init();
    const scope = { tenantId: "big", task: "t", promptVersion: "p", schemaVersion: "s", provider: "o", model: "m", paramsHash: "h", embedderId: "e", namespace: "n" };
    const small = { ...scope, tenantId: "small" };
    const rows = Array.from({ length: 60 }, (_, i) => ({
      id: `r${i}`,
      vector: [1, i / 60, (i % 7) / 7, 0.5],
      scope: i < 55 ? scope : small,
      text: `t${i}`,
      output: i,
      sourceItemId: i,
      createdAt: i,
      expiresAt: null,
    }));
    await s.upsert(rows);
    const opts = { limit: 3, minScore: 0.5, now: 1 };
    const big = await s.explainQuery([1, 0, 0, 0.5], scope, opts);
    assert.equal(big.plan, "hnsw");
    assert.match(big.explain, /Index Scan using sc_plans_embedding_hnsw/);
    const tiny = await s.explainQuery([1, 0, 0, 0.5], small, opts);
    assert.equal(tiny.plan, "exact");
    assert.doesNotMatch(tiny.explain, /embedding_hnsw/);
    // Both plans answer the same as an exact reference.
    const exact = new PgVectorStore({ pglite: own.pglite, dimensions: 4, table: "sc_plans", index: "none" });
    for (const sc of [scope, small]) {
      const a = (await s.query([1, 0.3, 0.2, 0.5], sc, opts)).map((h) => h.entry.id);
      const b = (await exact.query([1, 0.3, 0.2, 0.5], sc, opts)).map((h) => h.entry.id);
      assert.deepEqual(a, b);
    }
    // Deletes invalidate the counts the plan choice uses.
    assert.equal(await s.deleteScope({ tenantId: "big" }), 55);
    assert.equal((await s.explainQuery([1, 0, 0, 0.5], scope, opts)).plan, "exact");
  });

  it("rejects unsafe table names", () => {
    assert.throws(() => new PgVectorStore({ dimensions: 4, table: "x; drop table y" }), /invalid table name/);
  });
});
