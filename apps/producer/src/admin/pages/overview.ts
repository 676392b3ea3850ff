/** Overview: throughput, cost and savings per hour, cache hit rates, false-hit rate, latency, errors. */
import type { Request, Response } from "express";
import { loadPriceTable } from "@sieve/shared";
import type { ApiContext } from "../../context.js";
import { BadParam, html, int, jsonScript, layout, ms, pct, usd } from "../html.js";
import { RANGES, audits, errorsByCode, latency, rangeStart, savingsOf, series, sumsByKey, total, type RangeName } from "../queries.js";

export function rangeOf(req: Request): RangeName {
  const r = String(req.query.range ?? "hour");
  if (!(r in RANGES)) throw new BadParam("range", `expected one of ${Object.keys(RANGES).join(", ")}`);
  return r as RangeName;
}

function stat(id: string, label: string, value: string, title?: string) {
  return html`<div class="stat" data-stat="${id}"${title ? html` title="${title}"` : ""}><div class="label">${label}</div><div class="value">${value}</div></div>`;
}

export async function overviewPage(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const range = rangeOf(req);
  const tenant = typeof req.query.tenant === "string" && req.query.tenant ? req.query.tenant : undefined;
  const since = rangeStart(range);
  const seconds = (Date.now() - since.getTime()) / 1000;
  const hours = seconds / 3600;
  const [byKey, points, lat, errs, aud] = await Promise.all([
    sumsByKey(ctx.db, since, tenant),
    series(ctx.db, range, since, tenant),
    latency(ctx.db, since, tenant),
    errorsByCode(ctx.db, since, tenant),
    audits(ctx.db, since),
  ]);
  const t = total(byKey);
  const saved = savingsOf(byKey, loadPriceTable(ctx.env.SIEVE_PRICES), ctx.env.SIEVE_CONSOLE_GPU_REFERENCE_MODEL);
  const finished = t.itemsOk + t.itemsFailed;
  const audited = aud.reduce((a, r) => a + r.audited, 0);
  const agreed = aud.reduce((a, r) => a + r.agreed, 0);
  const rangeLinks = (Object.keys(RANGES) as RangeName[]).map(
    (r) => html`<a href="?range=${r}${tenant ? `&tenant=${encodeURIComponent(tenant)}` : ""}" class="${r === range ? "active" : ""}">${RANGES[r].label}</a>`,
  );
  const body = html`
<div class="toolbar"><span class="ranges">${rangeLinks}</span>
<form method="get" class="inline"><input type="hidden" name="range" value="${range}"><input name="tenant" placeholder="all tenants" value="${tenant ?? ""}"><button>Filter</button></form></div>
<p class="muted" id="window" data-since="${since.toISOString()}" data-tenant="${tenant ?? ""}">Since ${since.toISOString()} (${RANGES[range].label}${tenant ? `, tenant ${tenant}` : ", all tenants"}). Figures come from per-minute rollups written with every result.</p>
<section class="stats">
${stat("items-per-s", "Items / s", (finished / seconds).toFixed(3))}
${stat("calls-per-s", "LLM calls / s", (t.calls / seconds).toFixed(3))}
${stat("cost-per-h", "Cost / hour", usd(t.cost / hours))}
${stat("saved-per-h", "Saved / hour", usd(saved.total / hours))}
${stat("cost", "Cost in range", usd(t.cost), t.cost.toFixed(8))}
${stat("saved-cache", "Saved by caches", usd(saved.exact + saved.semantic + saved.coalesced + saved.learned), (saved.exact + saved.semantic + saved.coalesced + saved.learned).toFixed(8))}
${stat("items", "Items finished", int(finished))}
${stat("failed", "Items failed", int(t.itemsFailed))}
${stat("calls", "LLM calls", int(t.calls))}
${stat("tokens", "Tokens in / out", `${int(t.inputTokens)} / ${int(t.outputTokens)}`)}
</section>
<div class="grid2">
<section><h2>Money saved, by what saved it</h2>
<table class="num" id="savings"><thead><tr><th>Source</th><th>In range</th><th>Per hour</th></tr></thead><tbody>
${(
  [
    ["exact", "Exact cache hits", saved.exact],
    ["semantic", "Semantic cache hits", saved.semantic],
    ["coalesced", "Coalesced (in-flight) hits", saved.coalesced],
    ["learned", "Learned cache answers", saved.learned],
    ["packing", "Multi-item packing", saved.packing],
    ["batch", "Batch API discount", saved.batchDiscount],
    ["gpu", "Local GPU", saved.localGpu],
  ] as const
).map(([k, label, v]) => html`<tr data-saving="${k}"><td>${label}</td><td title="${v.toFixed(8)}">${usd(v)}</td><td>${usd(v / hours)}</td></tr>`)}
<tr class="total"><td>Total</td><td>${usd(saved.total)}</td><td>${usd(saved.total / hours)}</td></tr>
</tbody></table>
<p class="muted small">Packing, batch discount and GPU savings are estimates from list prices (docs/console.md).</p></section>
<section><h2>Cache hit rates</h2>
<table class="num" id="hits"><thead><tr><th>Kind</th><th>Hits</th><th>Rate</th></tr></thead><tbody>
<tr data-hits="exact"><td>Exact</td><td>${int(t.hitsExact)}</td><td>${pct(finished ? t.hitsExact / finished : null)}</td></tr>
<tr data-hits="semantic"><td>Semantic</td><td>${int(t.hitsSemantic)}</td><td>${pct(finished ? t.hitsSemantic / finished : null)}</td></tr>
<tr data-hits="coalesced"><td>Coalesced</td><td>${int(t.hitsCoalesced)}</td><td>${pct(finished ? t.hitsCoalesced / finished : null)}</td></tr>
<tr data-hits="learned"><td>Learned</td><td>${int(t.hitsLearned)}</td><td>${pct(finished ? t.hitsLearned / finished : null)}</td></tr>
</tbody></table>
<h3>Semantic false-hit rate (live audits)</h3>
${audited === 0
  ? html`<p class="muted" id="false-hits">No audited semantic hits in range.</p>`
  : html`<table class="num" id="false-hits"><thead><tr><th>Task</th><th>Audited hits</th><th>Disagreed</th><th>False-hit rate</th></tr></thead><tbody>
${aud.map((a) => html`<tr data-task="${a.task}"><td>${a.task}</td><td>${int(a.audited)}</td><td>${int(a.audited - a.agreed)}</td><td>${pct(a.audited ? 1 - a.agreed / a.audited : null)}</td></tr>`)}
<tr class="total"><td>All</td><td>${int(audited)}</td><td>${int(audited - agreed)}</td><td>${pct(1 - agreed / audited)}</td></tr></tbody></table>`}
</section></div>
<section><h2>Charts</h2><div class="charts">
<div class="chart" data-chart="throughput" data-title="Items finished, failed, LLM calls per bin"></div>
<div class="chart" data-chart="money" data-title="Cost and cache savings per bin (USD)"></div>
<div class="chart" data-chart="hits" data-title="Cache hits per bin"></div>
</div>${jsonScript("series", { range, points })}</section>
<div class="grid2">
<section><h2>Latency per lane and provider</h2>
<table class="num" id="latency"><thead><tr><th>Lane</th><th>Provider</th><th>Calls</th><th>Mean</th><th>p50 ≤</th><th>p95 ≤</th></tr></thead><tbody>
${lat.length === 0 ? html`<tr><td colspan="6" class="muted">No calls in range.</td></tr>` : lat.map((l) => html`<tr><td>${l.lane}</td><td>${l.provider}</td><td>${int(l.calls)}</td><td>${ms(l.meanMs)}</td><td>${l.p50 === Infinity ? "> 1 h" : ms(l.p50)}</td><td>${l.p95 === Infinity ? "> 1 h" : ms(l.p95)}</td></tr>`)}
</tbody></table><p class="muted small">Percentiles are bucket upper bounds (100 ms, 250 ms, 500 ms, 1 s, 2.5 s, 5 s, 10 s, 30 s, 1 min, 5 min, 1 h).</p></section>
<section><h2>Errors by code</h2>
<table class="num" id="errors"><thead><tr><th>Code</th><th>Provider</th><th>Lane</th><th>Items</th></tr></thead><tbody>
${errs.length === 0 ? html`<tr><td colspan="4" class="muted">No failed items in range.</td></tr>` : errs.map((e) => html`<tr><td><a href="/admin/jobs?status=partial">${e.code}</a></td><td>${e.provider}</td><td>${e.lane}</td><td>${int(e.n)}</td></tr>`)}
</tbody></table></section></div>`;
  res.type("html").send(layout({ title: "Overview", active: "overview", body, charts: true }));
}
