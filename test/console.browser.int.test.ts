/**
 * The operator console in a real browser: playwright-core driving Debian's Chromium (installed by
 * scripts/test.sh when missing) against the API, workers and batch lane on real Redis + Postgres
 * with the provider simulator. A wrong password is refused; the overview's cost and hit numbers
 * equal /v1/usage and /metrics; a job's failed item shows its error and "retry" fixes it; a
 * provider batch is cancelled at the provider; Bull Board lists the queues; and every request the
 * browser makes goes to Sieve itself. With SIEVE_SCREENSHOTS=1 it writes docs/images/console-*.png.
 * About 40 s.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

const CHROMIUM = process.env.SIEVE_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = process.env.SIEVE_SCREENSHOTS === "1";
const IMAGES = fileURLToPath(new URL("../docs/images/", import.meta.url));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Sum of a counter in the Prometheus text of /metrics, over the series matching `labels`. */
function promSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let s = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    s += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return s;
}

describe("operator console in Chromium", { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (scripts/test.sh installs it)` }, () => {
  let h: Harness;
  let ctx: BrowserContext;
  let page: Page;
  const userDirs: string[] = [];
  const requests: string[] = [];
  let partialJob = "";

  const shot = async (name: string) => {
    if (SHOTS) await page.screenshot({ path: join(IMAGES, `console-${name}.png`), fullPage: true });
  };
  /** A fresh browser profile (its own --user-data-dir) that answers the basic-auth challenge with `password`. */
  const launch = async (password: string) => {
    const dir = mkdtempSync(join(tmpdir(), "sieve-chromium-"));
    userDirs.push(dir);
    const c = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
      viewport: { width: 1400, height: 900 },
      httpCredentials: { username: "admin", password },
    });
    c.on("request", (r) => requests.push(r.url()));
    return c;
  };
  const go = async (path: string) => {
    const res = await page.goto(`${h.api.url}${path}`);
    assert.ok(res, path);
    return res;
  };

  before(async () => {
    h = await startHarness({ batchLane: true, env: { SIEVE_ADMIN_USER: "admin", SIEVE_ADMIN_PASSWORD: "console-pw" }, tenants: ["acme", "globex"] });
    // Data: a realtime job, the same texts again (exact-cache hits), a job with a dropped item.
    const items = Array.from({ length: 8 }, (_, i) => ({ id: `n${i}`, text: `Markets climb after earnings beat, note ${i}` }));
    assert.equal((await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items })).body.status, "completed");
    assert.equal((await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items })).body.counts.cached, 8);
    await h.call("globex", "POST", "/v1/jobs?wait=20s", { task: "translate", targetLanguage: "de", items: [{ id: "g1", text: "Good morning" }, { id: "g2", text: "See you tomorrow" }] });
    h.sim.setFaults({ rateDropItem: 1, seed: 3 });
    const bad = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [0, 1, 2].map((i) => ({ id: `p${i}`, text: `Striker scores twice in derby, match ${i}` })) });
    partialJob = bad.body.id;
    assert.equal((await waitForJob(h, "acme", partialJob)).status, "partial");
    h.sim.setFaults({});

    ctx = await launch("console-pw");
    page = ctx.pages()[0] ?? (await ctx.newPage());
  });

  after(async () => {
    await ctx?.close();
    for (const d of userDirs) rmSync(d, { recursive: true, force: true });
    await h?.close();
  });

  test("a wrong password is refused, the right one logs in", async () => {
    const wrong = await launch("not-the-password");
    try {
      const p = wrong.pages()[0] ?? (await wrong.newPage());
      for (const path of ["/admin", "/admin/jobs", "/admin/queues"]) {
        const res = await p.goto(`${h.api.url}${path}`);
        assert.equal(res?.status(), 401, path);
        assert.match(await p.content(), /operator credentials required/);
      }
    } finally {
      await wrong.close();
    }
    assert.equal((await go("/admin")).status(), 200);
    assert.equal(await page.locator("h1").textContent(), "Overview");
  });

  test("overview: cost and cache hits equal /v1/usage and /metrics", async () => {
    await go("/admin?range=hour&tenant=acme");
    const since = await page.locator("#window").getAttribute("data-since");
    assert.ok(since);
    const usage = (await h.call("acme", "GET", `/v1/usage?since=${since}`)).body;
    const cost = Number(await page.locator('[data-stat="cost"]').getAttribute("title"));
    const exact = Number((await page.locator('#hits [data-hits="exact"] td').nth(1).textContent())!.replace(/,/g, ""));
    const savedCache = Number(await page.locator('[data-stat="saved-cache"]').getAttribute("title"));
    assert.ok(usage.llm.costUsd > 0);
    assert.ok(Math.abs(cost - usage.llm.costUsd) < 1e-7, `overview ${cost} vs /v1/usage ${usage.llm.costUsd}`);
    assert.equal(exact, usage.results.cached.exact);
    assert.equal(exact, 8);
    assert.ok(Math.abs(savedCache - usage.savedUsd) < 1e-7, `${savedCache} vs ${usage.savedUsd}`);
    // All tenants against /metrics (one process: API and workers share the registry).
    await go("/admin?range=hour");
    const metrics = await (await fetch(`${h.api.url}/metrics`)).text();
    const allCost = Number(await page.locator('[data-stat="cost"]').getAttribute("title"));
    const allExact = Number((await page.locator('#hits [data-hits="exact"] td').nth(1).textContent())!.replace(/,/g, ""));
    assert.ok(Math.abs(allCost - promSum(metrics, "sieve_cost_usd_total")) < 1e-7, `${allCost} vs /metrics ${promSum(metrics, "sieve_cost_usd_total")}`);
    assert.equal(allExact, promSum(metrics, "sieve_cache_lookups_total", { kind: "exact", outcome: "hit" }));
    assert.equal(await page.locator("#errors td", { hasText: "item_missing" }).count(), 1);
    await page.waitForSelector(".chart canvas");
    assert.equal(await page.locator(".chart canvas").count(), 3, "three charts drawn by uPlot");
  });

  test("jobs: find a partial job, see its failed item's error, retry it", async () => {
    await go("/admin/jobs?tenant=acme&status=partial");
    await shot("jobs");
    await page.locator(`#jobs a[href="/admin/jobs/${partialJob}"]`).click();
    await page.waitForURL(`**/admin/jobs/${partialJob}`);
    const failed = page.locator("#failed-items tbody tr");
    assert.equal(await failed.count(), 1);
    assert.match((await failed.locator(".error-code").textContent()) ?? "", /item_missing/);
    await shot("job-failed");
    await page.locator("#retry-form button").click();
    await page.waitForURL(/flash=/);
    assert.match((await page.locator(".flash").textContent()) ?? "", /1 failed item re-enqueued/);
    await until("the retried item answered", async () => {
      await go(`/admin/jobs/${partialJob}`);
      return (await page.locator("#job-status").textContent()) === "completed";
    });
    assert.equal(await page.locator("#failed-items").count(), 0);
    const rows = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from results where job_id = ${partialJob}`);
    assert.equal(rows[0]!.n, 3, "one result per item after the retry");
    await shot("job-retried");
  });

  test("batches: cancel a provider batch from its page; the lane cancels it at the provider", async () => {
    h.sim.setBatchKnobs({ phaseMs: 60_000 });
    const items = Array.from({ length: 20 }, (_, i) => ({ id: `b${i}`, text: `Chip maker unveils faster processor line, item ${i}` }));
    const job = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "batch", provider: "openai", items });
    assert.equal(job.status, 202, job.text);
    const row = await until("a submitted batch", async () => (await queryRows<{ id: number }>(h.db.db, sql`select id::int from provider_batches where state = 'submitted' order by id desc limit 1`))[0]);
    await go("/admin/batches");
    await page.locator(`#batches a[href="/admin/batches/${row.id}"]`).click();
    await page.waitForURL(`**/admin/batches/${row.id}`);
    await page.locator("#cancel-form button").click();
    await page.waitForURL(/flash=/);
    assert.match((await page.locator(".flash").textContent()) ?? "", /Cancellation of batch \d+ requested/);
    await until("cancelling at the provider", async () => {
      await go(`/admin/batches/${row.id}`);
      return /cancelling/.test((await page.locator("#batch-summary").textContent()) ?? "");
    });
    h.sim.setBatchKnobs({ phaseMs: 150 });
    await until("the batch cancelled and settled", async () => {
      await go(`/admin/batches/${row.id}`);
      return (await page.locator("#batch-state").textContent())?.startsWith("settled");
    });
    const history = (await page.locator("#batch-events").textContent()) ?? "";
    for (const s of ["preparing", "submitted", "cancelling", "cancelled", "settled"]) assert.match(history, new RegExp(s));
    await shot("batch");
    await go("/admin/batches");
    await shot("batches");
    const done = await waitForJob(h, "acme", job.body.id, 60_000);
    assert.equal(done.status, "completed", "cancelled items were resubmitted and answered");
  });

  test("lanes, tenants and Bull Board render; every request stayed on Sieve's origin", async () => {
    await go("/admin/lanes");
    for (const q of ["realtime-openai", "batch-lane", "maintenance", "cache-fill", "cache-audit"]) assert.equal(await page.locator(`#queues [data-queue="${q}"]`).count(), 1, q);
    assert.equal(await page.locator('#engines [data-engine="vllm-0"]').count(), 1, "the GPU lane's engine (simulator) is listed");
    // Its chart (limit, in flight, running, waiting, KV cache over time) is drawn.
    await page.waitForSelector('[data-engine-chart="vllm-0"] canvas');
    for (const label of ["limit", "in flight", "KV %"]) assert.match((await page.locator('[data-engine-chart="vllm-0"]').textContent()) ?? "", new RegExp(label));
    await shot("lanes");
    await go("/admin/tenants");
    assert.equal(await page.locator('#top-tenants [data-tenant="acme"]').count(), 1);
    assert.doesNotMatch((await page.locator("#keys").textContent()) ?? "", /acme\s*[0-9a-f]{16}…\s*–/, "acme's key has a last use");
    await shot("tenants");
    // The overview again, now that the batch lane has answered too (the README's screenshot).
    await go("/admin?range=hour");
    await page.waitForSelector(".chart canvas");
    assert.ok(Number(await page.locator('[data-saving="batch"] td').nth(1).getAttribute("title")) > 0, "the batch discount shows");
    // Still equal to /metrics and /v1/usage with batch-lane calls in the data.
    const metrics = await (await fetch(`${h.api.url}/metrics`)).text();
    const allCost = Number(await page.locator('[data-stat="cost"]').getAttribute("title"));
    assert.ok(promSum(metrics, "sieve_cost_usd_total", { lane: "batch" }) > 0);
    assert.ok(Math.abs(allCost - promSum(metrics, "sieve_cost_usd_total")) < 1e-7, `${allCost} vs /metrics ${promSum(metrics, "sieve_cost_usd_total")}`);
    assert.equal(Number((await page.locator('[data-stat="calls"] .value').textContent())!.replace(/,/g, "")), promSum(metrics, "sieve_llm_calls_total"));
    const since = await page.locator("#window").getAttribute("data-since");
    const usage = [(await h.call("acme", "GET", `/v1/usage?since=${since}`)).body, (await h.call("globex", "GET", `/v1/usage?since=${since}`)).body];
    assert.ok(Math.abs(allCost - usage[0].llm.costUsd - usage[1].llm.costUsd) < 1e-7, "overview = sum of the tenants' /v1/usage");
    await shot("overview");
    await go("/admin/queues");
    await page.getByText("realtime-openai").first().waitFor();
    await page.waitForLoadState("networkidle");
    await shot("bullboard");
    await go("/admin/queues/queue/realtime-openai?status=failed");
    await page.waitForLoadState("networkidle");
    await shot("bullboard-failed");
    const origin = new URL(h.api.url).origin;
    const outside = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith("data:") && !u.startsWith("blob:"));
    assert.deepEqual(outside, [], "requests outside Sieve");
    assert.ok(requests.some((u) => u.includes("/admin/assets/uPlot.iife.min.js")));
  });
});
