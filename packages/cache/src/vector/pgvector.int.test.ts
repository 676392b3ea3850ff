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

vectorStoreContract("PgVectorStore (pgvector in PGlite, HNSW index)", async () =>
  new PgVectorStore({ pglite: db, dimensions: CONTRACT_DIMENSIONS, table: `sc_hnsw_${++n}` }),
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

  it("uses the HNSW index for a scoped nearest-neighbour query", async () => {
    const plan = await own.pglite.query<{ "QUERY PLAN": string }>(
      `explain select id from semantic_cache where scope_key = 'x' and (expires_at is null or expires_at > 0)
       order by embedding <=> '[1,0,0,0]'::vector limit 5`,
    );
    const text = plan.rows.map((r) => r["QUERY PLAN"]).join("\n");
    // An empty table may be planned either way; the index must at least exist and be usable.
    const idx = await own.pglite.query<{ indexdef: string }>(`select indexdef from pg_indexes where tablename = 'semantic_cache'`);
    assert.ok(idx.rows.some((r) => /using hnsw \(embedding vector_cosine_ops\)/i.test(r.indexdef)), JSON.stringify(idx.rows));
    assert.ok(text.length > 0);
  });

  it("rejects unsafe table names", () => {
    assert.throws(() => new PgVectorStore({ dimensions: 4, table: "x; drop table y" }), /invalid table name/);
  });
});
