/**
 * Several hosts: Redis + Postgres, the API, the provider simulator and two worker hosts each run in
 * their own network namespace (made here, joined by a bridge; addresses exist only inside them).
 * Mid-run one worker host is cut off (its link goes down) while it has a call in flight, then
 * brought back. Every item ends with exactly one result, the other host takes the cut-off host's
 * parcels over, and whatever the cut-off host writes when it comes back changes nothing.
 * Where namespaces cannot be made (not root, no iproute2), the suite says why and skips.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { openDb } from "@sieve/shared";
import { killAllChildren, sleep, spawnTracked, until } from "./support/children.js";
import { agNewsItems } from "./support/datasets.js";
import type { SimLog } from "./support/logged-sim.js";
import { NetnsLab, netnsUnavailable, type Host } from "./support/netns.js";
import { OwnPostgres, OwnRedis } from "./support/own-services.js";
import { LABELS } from "./support/harness.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const why = netnsUnavailable();
if (why) console.log(`# multihost: SKIPPED, ${why}`);

/** One HTTP exchange over a Unix socket (the forwarder into the namespaces). */
function viaSocket(socketPath: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, method, path: urlPath, headers: { ...headers, ...(data ? { "content-type": "application/json" } : {}) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(data);
  });
}

describe("several hosts: a worker host cut off mid-run and brought back", { skip: why ? `skipped: ${why}` : false, timeout: 180_000 }, () => {
  const KEY = "sk-sieve-multihost-acme-0123456789";
  let tmp = "";
  let lab: NetnsLab | undefined;
  let dbHost: Host, apiHost: Host, provHost: Host, w1: Host, w2: Host;
  let pgc: OwnPostgres;
  let admin: pg.Pool;
  let apiSock = "";
  let simSock = "";
  const simLog = async (): Promise<SimLog> => (await viaSocket(simSock, "GET", "/_log")).body as SimLog;
  const count = async (q: string): Promise<number> => Number((await admin.query(q)).rows[0]!.n);

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "sieve-multihost-"));
    chmodSync(tmp, 0o755); // the postgres user reaches its data dir through here
    lab = new NetnsLab("10.231.7");
    dbHost = lab.addHost("db", 10);
    apiHost = lab.addHost("api", 20);
    w1 = lab.addHost("w1", 31);
    w2 = lab.addHost("w2", 32);
    provHost = lab.addHost("prov", 40);
    lab.addressHub(1); // the forwarder in the hub reaches the hosts from here

    pgc = new OwnPostgres({ dir: path.join(tmp, "pg"), port: 5432, host: dbHost.addr, netns: dbHost.ns });
    pgc.init();
    const redis = new OwnRedis({ dir: path.join(tmp, "redis"), port: 6379, host: dbHost.addr, aof: true, netns: dbHost.ns });
    await Promise.all([pgc.start(), redis.start()]);
    await pgc.createDatabase("sieve");
    const migrated = await openDb({ url: pgc.socketUrl("sieve") });
    await migrated.close();
    admin = new pg.Pool({ connectionString: pgc.socketUrl("sieve"), max: 2 });

    simSock = path.join(tmp, "sim.sock");
    apiSock = path.join(tmp, "api.sock");
    const tsx = (script: string, args: string[], host: Host, name: string, env: Record<string, string> = {}) =>
      spawnTracked(name, process.execPath, ["--import", "tsx", path.join(ROOT, script), ...args], {
        netns: host.ns,
        cwd: ROOT,
        env: { ...process.env, ...env },
        logFile: path.join(tmp, `${name}.log`),
      });
    tsx("test/support/logged-sim.ts", ["--host", provHost.addr, "--port", "4010", "--socket", simSock, "--latency-ms", "400", "--jitter-ms", "400"], provHost, "sim");
    const env = {
      DATABASE_URL: `postgres://postgres@${dbHost.addr}:5432/sieve`,
      REDIS_URL: `redis://${dbHost.addr}:6379`,
      OPENAI_API_KEY: "sk-test-openai-key-123456",
      OPENAI_BASE_URL: `http://${provHost.addr}:4010/v1`,
      SIEVE_ROUTE_CLASSIFY: "openai:gpt-4.1-mini",
      SIEVE_ROUTE_TRANSLATE: "openai:gpt-4.1-mini",
      SIEVE_SEMANTIC_CACHE: "off",
      SIEVE_CALL_TIMEOUT_MS: "20000",
      LOG_LEVEL: "warn",
    };
    tsx("apps/cli/src/main.ts", ["start"], apiHost, "api", { ...env, SIEVE_ROLE: "api", HOST: apiHost.addr, PORT: "8080", SIEVE_API_KEYS: `acme:${KEY}` });
    // Short locks so that the other host takes a cut-off host's parcels over within seconds.
    for (const [h, name] of [[w1, "w1"], [w2, "w2"]] as const) tsx("test/support/worker-process.ts", [], h, name, { ...env, SIEVE_ROLE: "workers", TEST_LOCK_MS: "4000" });
    spawnTracked("forward", process.execPath, ["--import", "tsx", path.join(ROOT, "test/support/forward.ts"), `unix:${apiSock}=tcp:${apiHost.addr}:8080`], {
      netns: lab.hub,
      cwd: ROOT,
      logFile: path.join(tmp, "forward.log"),
    });
    await until("the simulator", () => simLog().then(() => true), 60_000, 250);
    await until("the API to be ready", async () => (await viaSocket(apiSock, "GET", "/readyz")).status === 200, 60_000, 250);
    for (const name of ["w1", "w2"]) await until(`worker host ${name}`, async () => readFileSync(path.join(tmp, `${name}.log`), "utf8").includes("worker-process ready"), 60_000, 250);
  });

  after(async () => {
    await admin?.end().catch(() => {});
    await pgc?.stop().catch(() => {});
    await killAllChildren();
    lab?.close();
    if (tmp && !process.env.SIEVE_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
  });

  test("nothing lost, nothing doubled; the cut-off host's late writes change nothing", { timeout: 150_000 }, async () => {
    const texts = agNewsItems(640);
    const jobs: string[] = [];
    // 16 jobs of 40 items, 4 at a time, while both hosts work.
    for (let j = 0; j < 16; j += 4) {
      const rs = await Promise.all(
        [0, 1, 2, 3].map((k) =>
          viaSocket(apiSock, "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: texts.slice((j + k) * 40, (j + k + 1) * 40).map((t) => ({ id: t.id, text: t.text })) }, { authorization: `Bearer ${KEY}` }),
        ),
      );
      for (const r of rs) {
        assert.equal(r.status, 202, JSON.stringify(r.body));
        jobs.push(r.body.id);
      }
    }

    // Cut w1 off while it has a call in flight.
    await until("w1 to have a provider call in flight", async () => ((await simLog()).byRemote[w1.addr]?.inflight ?? 0) > 0, 30_000, 20);
    lab!.setLink(w1, false);
    const cutAt = await simLog();
    const w1InFlight = cutAt.byRemote[w1.addr]!.inflight;
    // Transactions w1 had open at the cut keep their row locks until Postgres rolls them back
    // (SIEVE_PG_IDLE_TX_TIMEOUT_MS, docs/operations.md#a-host-cut-off-mid-transaction).
    const w1OpenTx = await count(`select count(*)::int as n from pg_stat_activity where client_addr = '${w1.addr}' and xact_start is not null`);

    // While it is cut off, the other host finishes everything, w1's parcels included.
    await until("every item to have a result while w1 is cut off", async () => (await count("select count(*)::int as n from items i where not exists (select 1 from results r where r.item_id = i.id)")) === 0, 60_000, 500);
    const before = (await admin.query("select item_id, status, llm_call_id from results order by item_id")).rows;
    const callsBefore = await count("select count(*)::int as n from llm_calls");
    // w1 answered into the void while cut off: those answers are what it may try to write late.
    const log = await simLog();
    const known = new Set((await admin.query("select request_id from llm_calls where request_id is not null")).rows.map((r) => r.request_id as string));
    const w1Unwritten = (log.byRemote[w1.addr]?.requestIds ?? []).filter((id) => !known.has(id));

    lab!.setLink(w1, true);
    const backAt = await simLog();
    // Give w1 time to come back and try its late writes (TCP retransmission resumes its sockets).
    const settle = Date.now() + 20_000;
    while (Date.now() < settle) {
      const landed = (await admin.query("select count(*)::int as n from llm_calls where request_id = any($1)", [w1Unwritten])).rows[0].n;
      if (w1Unwritten.length > 0 && landed === w1Unwritten.length) break;
      await sleep(500);
    }
    await sleep(2_000);

    const itemsN = await count("select count(*)::int as n from items");
    assert.equal(itemsN, 640, "every submitted item is in Postgres once (no job doubled)");
    assert.equal(await count("select count(*)::int as n from results"), 640, "every item has exactly one result");
    assert.equal(await count("select count(*)::int as n from results where status <> 'ok'"), 0, "and it is an answer, not an error");
    const afterRows = (await admin.query("select item_id, status, llm_call_id from results order by item_id")).rows;
    assert.deepEqual(afterRows, before, "the cut-off host's late writes changed no result");
    const counters = (await admin.query("select id, item_count, done_count, error_count, status from jobs")).rows;
    assert.equal(counters.length, jobs.length);
    for (const j of counters) {
      assert.equal(j.done_count, j.item_count, `job ${j.id}: done counted once per item (late writes are not counted again)`);
      assert.equal(j.status, "completed");
    }
    const final = await simLog();
    const w2Final = final.byRemote[w2.addr]!;
    assert.ok(w2Final.requests > (cutAt.byRemote[w2.addr]?.requests ?? 0), "the other host kept working while w1 was cut off");
    // The healthy host never pays for the same item twice; what went to the provider twice is the
    // cut-off host's work (redone by the other host, or repeated by w1 itself once back).
    assert.equal(w2Final.textsResent, 0, "w2 sent no item twice");
    const w1Final = final.byRemote[w1.addr]!;
    const callsAfter = await count("select count(*)::int as n from llm_calls");
    // No invisible spend: every call the provider answered has its llm_calls row, the cut-off
    // host's included (by request id, or as a row recorded before the call and never completed).
    const ledger = (await admin.query("select request_id from llm_calls")).rows.map((r) => r.request_id as string | null);
    const ids = new Set(ledger.filter((x): x is string => x !== null));
    const unrecorded = Math.max(0, final.requestIds.filter((id) => !ids.has(id)).length - ledger.filter((x) => x === null).length);
    assert.equal(unrecorded, 0, "every provider call is in the ledger");
    console.log(
      `# multihost: w1 had ${w1InFlight} call(s) in flight and ${w1OpenTx} transaction(s) open at the cut, and ${w1Unwritten.length} answer(s) it had not written; ` +
        `once back it made ${w1Final.requests - (backAt.byRemote[w1.addr]?.requests ?? 0)} more provider call(s); ` +
        `${callsAfter - callsBefore} llm_calls row(s) were added after the cut-off host came back (late writes), results unchanged; ` +
        `items sent to the provider more than once: ${final.textsResent} (w1 repeating its own: ${w1Final.textsResent})`,
    );
  });
});
