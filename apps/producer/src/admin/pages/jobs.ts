/** Jobs: find by id, tenant or status; a job's items (failed first), outputs, errors, LLM calls and cost. */
import type { Request, Response } from "express";
import type { ApiContext } from "../../context.js";
import { csrfField } from "../csrf.js";
import { BadParam, html, int, layout, ms, usd, when } from "../html.js";
import { JOB_STATUSES, getJobAny, jobItems, jobMoney, listJobs, type ItemRow } from "../jobs.js";

export async function jobsPage(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const q = (k: string) => (typeof req.query[k] === "string" && req.query[k] ? String(req.query[k]).slice(0, 200) : undefined);
  const id = q("id");
  if (id) {
    const job = await getJobAny(ctx.db, id.trim());
    if (job) return res.redirect(303, `/admin/jobs/${encodeURIComponent(job.id)}`);
  }
  const tenant = q("tenant");
  const status = q("status");
  const before = q("before");
  if (status && !(JOB_STATUSES as readonly string[]).includes(status)) throw new BadParam("status", `expected one of ${JOB_STATUSES.join(", ")}`);
  if (before && Number.isNaN(Date.parse(before))) throw new BadParam("before", "expected an ISO date");
  const rows = await listJobs(ctx.db, { tenant, status, before, limit: 50 });
  const qs = (extra: string) => `?${tenant ? `tenant=${encodeURIComponent(tenant)}&` : ""}${status ? `status=${status}&` : ""}${extra}`;
  const body = html`
<form method="get" class="inline" id="job-search">
<input name="id" placeholder="job id" value="${id ?? ""}" size="36"><input name="tenant" placeholder="tenant" value="${tenant ?? ""}">
<select name="status"><option value="">any status</option>${JOB_STATUSES.map((s) => html`<option${s === status ? html` selected` : ""}>${s}</option>`)}</select>
<button class="primary">Find</button></form>
${id ? html`<p class="flash">No job with id ${id}.</p>` : ""}
<table id="jobs"><thead><tr><th>Job</th><th>Tenant</th><th>Task</th><th>Lane</th><th>Provider / model</th><th>Status</th><th>Items</th><th>Failed</th><th>Cached</th><th>Created</th></tr></thead><tbody>
${rows.length === 0 ? html`<tr><td colspan="10" class="muted">No jobs match.</td></tr>` : rows.map(
  (j) => html`<tr><td><a href="/admin/jobs/${j.id}">${j.id}</a></td><td>${j.tenantId}</td><td>${j.task}</td><td>${j.lane}</td><td>${j.provider} / ${j.model}</td>
<td class="status-${j.status}">${j.status}</td><td>${int(j.doneCount)} / ${int(j.itemCount)}</td><td>${int(j.errorCount)}</td><td>${int(j.cachedCount)}</td><td>${when(j.createdAt)}</td></tr>`,
)}
</tbody></table>
${rows.length === 50 ? html`<p><a href="${qs(`before=${encodeURIComponent(new Date(rows[49]!.createdAt).toISOString())}`)}">Older jobs →</a></p>` : ""}`;
  res.type("html").send(layout({ title: "Jobs", active: "jobs", body }));
}

function itemRow(it: ItemRow) {
  const answered = it.cache
    ? html`<span class="pill">${it.cache} cache hit</span> saved ${usd(Number(it.savedUsd ?? 0))}`
    : it.llmCallId
      ? html`call #${it.llmCallId} (${it.callProvider} ${it.callModel}, ${int(it.callItems ?? 0)} item${it.callItems === 1 ? "" : "s"}, ${usd(Number(it.callCostUsd ?? 0))}, ${ms(it.callLatencyMs)}, ${it.callOutcome})`
      : it.status
        ? html`<span class="muted">no call answered it${it.resultProvider ? ` (${it.resultProvider} ${it.resultModel ?? ""})` : ""}</span>`
        : html`<span class="muted">pending</span>`;
  return html`<tr class="${it.status === "error" ? "failed" : ""}" data-item="${it.externalId}"><td>${it.seq}</td><td>${it.externalId}</td><td><pre>${it.text}</pre></td>
<td class="status-${it.status ?? "pending"}">${it.status ?? "pending"}</td>
<td>${it.status === "error" ? html`<b class="error-code">${it.errorCode}</b><pre>${it.errorMessage}</pre>` : it.output !== null && it.output !== undefined ? html`<pre>${JSON.stringify(it.output)}</pre>` : ""}</td>
<td>${answered}</td><td>${it.costUsd !== null ? usd(Number(it.costUsd)) : "–"}</td></tr>`;
}

const ITEM_HEAD = html`<thead><tr><th>#</th><th>Item id</th><th>Text</th><th>Status</th><th>Output / error</th><th>Answered by</th><th>Item cost</th></tr></thead>`;

export async function jobPage(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const job = await getJobAny(ctx.db, String(req.params.id));
  if (!job) {
    res.status(404).type("html").send(layout({ title: "Job not found", active: "jobs", body: html`<p>No job with id ${String(req.params.id)}. <a href="/admin/jobs">Find a job</a></p>` }));
    return;
  }
  if (req.query.after !== undefined && !/^\d{1,9}$/.test(String(req.query.after))) throw new BadParam("after", "expected an item position (integer)");
  const after = req.query.after === undefined ? -1 : Number(req.query.after);
  const [items, money] = await Promise.all([jobItems(ctx.db, job.id, after, 100), jobMoney(ctx.db, job.id)]);
  const flash = typeof req.query.flash === "string" ? req.query.flash.slice(0, 200) : undefined;
  const last = items.page[items.page.length - 1];
  const body = html`
<dl class="kv" id="job-summary">
<dt>Tenant</dt><dd>${job.tenantId}</dd><dt>Status</dt><dd class="status-${job.status}" id="job-status">${job.status}</dd>
<dt>Task</dt><dd>${job.task} · ${job.promptVersion}</dd><dt>Lane</dt><dd>${job.lane}</dd><dt>Provider / model</dt><dd>${job.provider} / ${job.model}</dd>
<dt>Items</dt><dd>${int(job.itemCount)} (done ${int(job.doneCount)}, failed <span id="job-failed">${int(job.errorCount)}</span>, cached ${int(job.cachedCount)})</dd>
<dt>Cost</dt><dd>${usd(money.cost)} over ${int(money.calls)} LLM call${money.calls === 1 ? "" : "s"} · saved ${usd(money.saved)}</dd>
<dt>Created</dt><dd>${when(job.createdAt)}</dd><dt>Completed</dt><dd>${when(job.completedAt)}</dd>
</dl>
${job.errorCount > 0
  ? html`<form method="post" action="/admin/jobs/${job.id}/retry" class="inline" id="retry-form">${csrfField(res)}<button class="danger">Retry ${int(job.errorCount)} failed item${job.errorCount === 1 ? "" : "s"}</button>
<span class="muted small">Deletes their error results and re-enqueues them; each item still ends with exactly one result.</span></form>`
  : ""}
<h2>Failed items (${int(items.failed.length)}${items.failed.length === 200 ? "+" : ""})</h2>
${items.failed.length === 0 ? html`<p class="muted">None.</p>` : html`<table id="failed-items">${ITEM_HEAD}<tbody>${items.failed.map(itemRow)}</tbody></table>`}
<h2>All items</h2>
<table id="items">${ITEM_HEAD}<tbody>${items.page.map(itemRow)}</tbody></table>
${items.page.length === 100 && last ? html`<p><a href="/admin/jobs/${job.id}?after=${last.seq}">Next items →</a></p>` : ""}`;
  res.type("html").send(layout({ title: `Job ${job.id}`, active: "jobs", body, flash }));
}
