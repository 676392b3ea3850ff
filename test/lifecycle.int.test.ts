/**
 * Closing Sieve leaves nothing behind: no timers, sockets or handles that would keep a process
 * alive after SIGTERM (a leaked 10 s grace timer in the aggregator once delayed every exit).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startHarness, LABELS } from "./support/harness.js";

function counts(list: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of list) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

test("after close, no resource of ours is left", async () => {
  const before = counts(process.getActiveResourcesInfo());
  const h = await startHarness({ batchLane: true });
  const r = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items: [{ id: "a", text: "hello" }] });
  assert.equal(r.status, 200);
  await h.close();
  await new Promise((resolve) => setImmediate(resolve));
  const after = counts(process.getActiveResourcesInfo());
  const leaked = [...after].filter(([k, n]) => n > (before.get(k) ?? 0));
  assert.deepEqual(leaked, [], `leaked: ${JSON.stringify(leaked)}`);
});
