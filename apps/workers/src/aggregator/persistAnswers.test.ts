/**
 * Answers already paid for are not thrown away by a short Postgres outage: their write is retried
 * while Postgres is unreachable (docs/operations.md#outages), and only then handed back.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeRetryingOutages } from "./persistAnswers.js";

const pgDown = () => Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01", severity: "FATAL" });

test("a write that meets Postgres restarting is retried until it lands", async () => {
  let tries = 0;
  const out = await writeRetryingOutages({ persistRetryMs: 10_000 }, async () => {
    if (++tries < 3) throw pgDown();
    return "written";
  });
  assert.equal(out, "written");
  assert.equal(tries, 3);
});

test("a bad statement is not an outage: thrown at once, never retried", async () => {
  let tries = 0;
  const syntax = Object.assign(new Error("syntax error"), { code: "42601", severity: "ERROR" });
  await assert.rejects(
    writeRetryingOutages({ persistRetryMs: 10_000 }, async () => {
      tries++;
      throw syntax;
    }),
    /syntax error/,
  );
  assert.equal(tries, 1);
});

test("an outage longer than the window gives up (the items go back for another call)", async () => {
  let tries = 0;
  const t0 = Date.now();
  await assert.rejects(
    writeRetryingOutages({ persistRetryMs: 1_200 }, async () => {
      tries++;
      throw pgDown();
    }),
    /administrator command/,
  );
  assert.ok(tries >= 2, `retried (${tries} tries)`);
  assert.ok(Date.now() - t0 < 5_000, "gave up near the window, not later");
});

test("a worker shutting down stops retrying", async () => {
  const ac = new AbortController();
  let tries = 0;
  await assert.rejects(
    writeRetryingOutages({ persistRetryMs: 60_000, signal: ac.signal }, async () => {
      if (++tries === 2) ac.abort();
      throw pgDown();
    }),
  );
  assert.equal(tries, 2);
});
