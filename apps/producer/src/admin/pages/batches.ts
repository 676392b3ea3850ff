/** Batches: every provider batch with its status history, counts, cost and errors; cancel. */
import type { Request, Response } from "express";
import { sql } from "drizzle-orm";
import { queryRows } from "@sieve/shared";
import { getBatchRow, OPEN_STATES } from "@sieve/shared/db/ops/batchLane";
import { requestOutcomes } from "@sieve/shared/db/ops/batchViews";
import { BATCH_STATES } from "@sieve/shared/db/schema/index";
import type { ApiContext } from "../../context.js";
import { csrfField } from "../csrf.js";
import { BadParam, html, int, layout, usd, when } from "../html.js";

interface BatchListRow {
  id: number;
  provider: string;
  model: string;
  state: string;
  providerStatus: string | null;
  providerBatchId: string | null;
  tenantIds: string[];
  requestCount: number;
  itemCount: number;
  okItems: number;
  retriedItems: number;
  erroredItems: number;
  costUsd: number;
  cancelRequested: boolean;
  lastError: string | null;
  createdAt: string;
}

export async function batchesPage(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const state = typeof req.query.state === "string" && req.query.state ? req.query.state : undefined;
  if (state && !(BATCH_STATES as readonly string[]).includes(state)) throw new BadParam("state", `expected one of ${BATCH_STATES.join(", ")}`);
  const rows = await queryRows<BatchListRow>(
    ctx.db,
    sql`select id::int, provider, model, state, provider_status as "providerStatus", provider_batch_id as "providerBatchId", tenant_ids as "tenantIds",
          request_count as "requestCount", item_count as "itemCount", ok_items as "okItems", retried_items as "retriedItems", errored_items as "erroredItems",
          cost_usd::float8 as "costUsd", cancel_requested as "cancelRequested", last_error as "lastError", created_at as "createdAt"
        from provider_batches ${state ? sql`where state = ${state}` : sql``} order by id desc limit 100`,
  );
  const body = html`
<form method="get" class="inline"><select name="state"><option value="">any state</option>${BATCH_STATES.map((s) => html`<option${s === state ? html` selected` : ""}>${s}</option>`)}</select><button>Filter</button></form>
${ctx.batchLane ? "" : html`<p class="muted">The batch lane is off in this process (SIEVE_BATCH_LANE=false); batches recorded earlier are still listed.</p>`}
<table id="batches"><thead><tr><th>Batch</th><th>Provider / model</th><th>State</th><th>Provider status</th><th>Tenants</th><th>Requests</th><th>Items ok / retried / errored</th><th>Cost</th><th>Last error</th><th>Created</th></tr></thead><tbody>
${rows.length === 0 ? html`<tr><td colspan="10" class="muted">No provider batches.</td></tr>` : rows.map(
  (b) => html`<tr><td><a href="/admin/batches/${b.id}">#${b.id}</a></td><td>${b.provider} / ${b.model}</td><td class="status-${b.state}">${b.state}${b.cancelRequested ? " (cancel requested)" : ""}</td>
<td>${b.providerStatus ?? "–"}</td><td>${b.tenantIds.join(", ")}</td><td>${int(b.requestCount)}</td><td>${int(b.okItems)} / ${int(b.retriedItems)} / ${int(b.erroredItems)} of ${int(b.itemCount)}</td>
<td>${usd(b.costUsd)}</td><td>${b.lastError ? html`<pre>${b.lastError.slice(0, 200)}</pre>` : "–"}</td><td>${when(b.createdAt)}</td></tr>`,
)}</tbody></table>`;
  res.type("html").send(layout({ title: "Provider batches", active: "batches", body }));
}

export async function batchPage(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const raw = String(req.params.id);
  const b = /^\d{1,15}$/.test(raw) ? await getBatchRow(ctx.db, Number(raw)) : undefined;
  if (!b) {
    res.status(404).type("html").send(layout({ title: "Batch not found", active: "batches", body: html`<p>No batch ${raw}. <a href="/admin/batches">All batches</a></p>` }));
    return;
  }
  const [events, outcomes] = await Promise.all([
    queryRows<{ state: string; providerStatus: string | null; cancelRequested: boolean; at: string }>(
      ctx.db,
      sql`select state, provider_status as "providerStatus", cancel_requested as "cancelRequested", at from provider_batch_events where batch_id = ${b.id} order by id limit 500`,
    ),
    requestOutcomes(ctx.db, b.id),
  ]);
  const open = (OPEN_STATES as readonly string[]).includes(b.state);
  const flash = typeof req.query.flash === "string" ? req.query.flash.slice(0, 200) : undefined;
  const body = html`
<dl class="kv" id="batch-summary">
<dt>State</dt><dd class="status-${b.state}" id="batch-state">${b.state}${b.cancelRequested ? " (cancel requested)" : ""}</dd>
<dt>Provider</dt><dd>${b.provider} / ${b.model} · provider batch ${b.providerBatchId ?? "–"} · status ${b.providerStatus ?? "–"}</dd>
<dt>Tenants</dt><dd>${b.tenantIds.join(", ")}</dd>
<dt>Requests</dt><dd>${int(b.requestCount)} (settled ${int(b.settledRequests)}) · ${Object.entries(outcomes).map(([k, v]) => `${k}: ${v}`).join(", ")}</dd>
<dt>Items</dt><dd>${int(b.itemCount)}: ok ${int(b.okItems)}, retried ${int(b.retriedItems)}, errored ${int(b.erroredItems)}</dd>
<dt>Tokens</dt><dd>estimated ${int(b.estInputTokens)} in · ${int(b.inputTokens)} in / ${int(b.outputTokens)} out</dd>
<dt>Cost</dt><dd>${usd(Number(b.costUsd))} (batch price)</dd>
<dt>Files</dt><dd>input ${b.inputFileId ?? "–"} · output ${b.outputFileId ?? "–"} · errors ${b.errorFileId ?? "–"}</dd>
<dt>Last error</dt><dd>${b.lastError ? html`<pre>${b.lastError}</pre>` : "–"}</dd>
<dt>Times</dt><dd>created ${when(b.createdAt)} · submitted ${when(b.submittedAt)} · ended ${when(b.endedAt)} · settled ${when(b.settledAt)} · last polled ${when(b.lastPolledAt)}</dd>
</dl>
${open && !b.cancelRequested
  ? html`<form method="post" action="/admin/batches/${b.id}/cancel" class="inline" id="cancel-form">${csrfField(res)}<button class="danger">Cancel batch</button>
<span class="muted small">Cancelled at the provider by the batch lane's poller, then settled; unfinished items are resubmitted up to SIEVE_BATCH_MAX_ATTEMPTS (docs/batch-lane.md).</span></form>`
  : ""}
<h2>Status history</h2>
<table id="batch-events"><thead><tr><th>At</th><th>State</th><th>Provider status</th><th>Cancel requested</th></tr></thead><tbody>
${events.length === 0 ? html`<tr><td colspan="4" class="muted">No recorded changes (batches created before the console existed have none).</td></tr>` : events.map((e) => html`<tr><td>${when(e.at)}</td><td class="status-${e.state}">${e.state}</td><td>${e.providerStatus ?? "–"}</td><td>${e.cancelRequested ? "yes" : ""}</td></tr>`)}
</tbody></table>`;
  res.type("html").send(layout({ title: `Batch #${b.id}`, active: "batches", body, flash }));
}
