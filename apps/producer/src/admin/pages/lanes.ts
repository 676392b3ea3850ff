/** Lanes and engines: queue depth per lane and provider; GPU engines' health, load and concurrency limit over time. */
import type { Request, Response } from "express";
import type { Queue } from "bullmq";
import { waitingCounts } from "@sieve/shared/db/ops/batchViews";
import type { ApiContext } from "../../context.js";
import type { EngineSource, EngineStatus } from "../engines.js";
import { html, int, jsonScript, layout, pct, when } from "../html.js";

const STATES = ["waiting", "prioritized", "active", "delayed", "failed", "completed"] as const;

export async function lanesPage(ctx: ApiContext, queues: Queue[], engines: EngineSource | undefined, _req: Request, res: Response): Promise<void> {
  const [counts, batchWaiting, list] = await Promise.all([
    Promise.all(queues.map(async (q) => ({ name: q.name, c: await q.getJobCounts(...STATES).catch(() => undefined) }))),
    ctx.batchLane ? waitingCounts(ctx.db) : Promise.resolve({} as Record<string, { waiting: number; packed: number }>),
    engines ? engines.engines().catch(() => [] as EngineStatus[]) : Promise.resolve([] as EngineStatus[]),
  ]);
  const body = html`
<h2>Queues (Redis)</h2>
<table class="num" id="queues"><thead><tr><th>Queue</th>${STATES.map((s) => html`<th>${s}</th>`)}</tr></thead><tbody>
${counts.map((q) => html`<tr data-queue="${q.name}"><td><a href="/admin/queues/queue/${q.name}">${q.name}</a></td>${STATES.map((s) => html`<td>${q.c ? int(q.c[s] ?? 0) : "unreachable"}</td>`)}</tr>`)}
</tbody></table>
<p class="muted small">Realtime queues hold parcels (up to maxItems items each). Batch-lane items wait in Postgres, below.</p>
<h2>Batch lane (Postgres)</h2>
${ctx.batchLane
  ? html`<table class="num" id="batch-lane"><thead><tr><th>Provider</th><th>Items waiting for a batch</th><th>Items in open batches</th></tr></thead><tbody>
${Object.keys(batchWaiting).length === 0 ? html`<tr><td colspan="3" class="muted">Nothing waiting.</td></tr>` : Object.entries(batchWaiting).map(([p, c]) => html`<tr><td>${p}</td><td>${int(c.waiting)}</td><td>${int(c.packed)}</td></tr>`)}
</tbody></table>`
  : html`<p class="muted">The batch lane is off (SIEVE_BATCH_LANE=false).</p>`}
<h2>GPU engines</h2>
${list.length === 0
  ? html`<p id="engines-none" class="muted">No GPU engines configured (no GPU worker reports one, and VLLM_BASE_URL is unset).</p>`
  : html`<table class="num" id="engines"><thead><tr><th>Engine</th><th>Health</th><th>Running</th><th>Waiting</th><th>KV cache</th><th>In flight</th><th>Concurrency limit</th><th>Limiter</th><th>Last sample</th><th>Last error</th></tr></thead><tbody>
${list.map((e) => engineRow(e))}</tbody></table>
<p class="muted small">${sourceNote(list)}</p>
<div class="charts">${list.map((e) => html`<div class="chart" data-engine-chart="${e.id}" data-title="${e.id}: concurrency limit, in flight, running, waiting; KV cache %"></div>`)}</div>
${jsonScript("engines-data", list.map((e) => ({ id: e.id, samples: e.samples.map(({ at, running, waiting, kvCacheUsage, limit, inFlight }) => ({ at, running, waiting, kvCacheUsage, limit, inFlight })) })))}`}`;
  res.type("html").send(layout({ title: "Lanes and engines", active: "lanes", body, charts: list.length > 0 }));
}

function engineRow(e: EngineStatus) {
  const s = e.samples[e.samples.length - 1];
  const limit = s?.limit ?? e.concurrencyLimit;
  const perProcess = s?.limits && s.limits.length > 1 ? html`<br><span class="muted small">${s.limits.join(" + ")} in ${s.limits.length} processes</span>` : "";
  return html`<tr data-engine="${e.id}" data-url="${e.url ?? ""}" data-health="${s?.healthy ? "healthy" : "unhealthy"}" data-limit="${limit ?? ""}" data-in-flight="${s?.inFlight ?? ""}" data-processes="${s?.processes ?? ""}">
<td>${e.id}<br><span class="muted small">${e.model ?? ""} ${e.url ?? ""}</span></td><td class="${s?.healthy ? "status-ok" : "status-error"}">${s ? (s.health ?? (s.healthy ? "healthy" : "down")) : "–"}</td>
<td>${s?.running ?? "–"}</td><td>${s?.waiting ?? "–"}</td><td>${pct(s?.kvCacheUsage)}</td><td>${s?.inFlight ?? "–"}</td><td>${limit ?? "–"}${perProcess}</td><td>${s?.signal ?? "–"}</td><td>${when(s ? new Date(s.at) : null)}</td><td>${e.lastError ?? ""}</td></tr>`;
}

function sourceNote(list: EngineStatus[]) {
  if (list.some((e) => e.source === "direct")) {
    return "No GPU worker reports: the console probes VLLM_BASE_URL itself; the limit shown is SIEVE_WORKER_CONCURRENCY.";
  }
  return "As reported by the GPU worker processes (SIEVE_ROLE=gpu, or workers consuming the vllm lane): limit and in flight add up over the processes; running, waiting and KV cache are the engine's own /metrics. Sampled every 15 s while the page is used.";
}
