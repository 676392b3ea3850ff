/**
 * Closing Sieve leaves nothing behind: no timers, sockets or handles that would keep a process
 * alive after SIGTERM (a leaked 10 s grace timer in the aggregator once delayed every exit),
 * and a process that cannot serve (its port is taken) does not pretend to.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { createTestDb, deleteRedisPrefix, testPrefix } from "@sieve/shared/db/testing";
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

test("the API exits non-zero with a clear message when its port is taken", async () => {
  const busy = createServer();
  busy.listen(0, "127.0.0.1");
  await once(busy, "listening");
  const port = (busy.address() as AddressInfo).port;
  const db = await createTestDb("sieve_port");
  const main = fileURLToPath(new URL("../apps/cli/src/main.ts", import.meta.url));
  const prefix = testPrefix("port");
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const child = spawn(process.execPath, ["--import", "tsx", main, "start"], {
    env: {
      ...process.env,
      SIEVE_ROLE: "api",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      SIEVE_QUEUE_PREFIX: prefix,
      SIEVE_SIMULATOR: "true",
      SIEVE_SIMULATOR_PORT: "0",
      SIEVE_SEMANTIC_CACHE: "off",
      LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const [code] = (await once(child, "exit")) as [number | null];
    assert.notEqual(code, 0, `exit code ${code}`);
    assert.notEqual(code, null, "it exited by itself (it was not killed after 60 s of serving nothing)");
    assert.match(out, new RegExp(`PORT ${port} on HOST 127.0.0.1 is already in use`));
    assert.doesNotMatch(out, /Sieve API listening/);
  } finally {
    clearTimeout(timer);
    child.kill("SIGKILL");
    busy.close();
    await db.drop();
    // The API registered its queues before it found the port taken.
    await deleteRedisPrefix(redisUrl, prefix);
  }
});
