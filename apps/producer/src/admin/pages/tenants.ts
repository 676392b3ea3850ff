/** Tenants: spend and savings per tenant per day, top tenants, API keys (hashed) and their last use. */
import type { Request, Response } from "express";
import { sql } from "drizzle-orm";
import { loadPriceTable, queryRows } from "@sieve/shared";
import type { ApiContext } from "../../context.js";
import { html, int, layout, usd, when } from "../html.js";
import { savingsOf, tenantDays, tenantSums, total } from "../queries.js";

const DAY = 86_400_000;

export async function tenantsPage(ctx: ApiContext, _req: Request, res: Response): Promise<void> {
  const today = Math.floor(Date.now() / DAY) * DAY;
  const since14 = new Date(today - 13 * DAY);
  const since7 = new Date(today - 6 * DAY);
  const [days, sums, keys] = await Promise.all([
    tenantDays(ctx.db, since14),
    tenantSums(ctx.db, since7),
    queryRows<{ id: number; tenantId: string; keyHash: string; label: string | null; createdAt: string; revokedAt: string | null; lastUsedAt: string | null }>(
      ctx.db,
      sql`select id::int, tenant_id as "tenantId", key_hash as "keyHash", label, created_at as "createdAt", revoked_at as "revokedAt", last_used_at as "lastUsedAt"
          from api_keys order by last_used_at desc nulls last, id limit 500`,
    ),
  ]);
  const prices = loadPriceTable(ctx.env.SIEVE_PRICES);
  const byDay = new Map<string, typeof days>();
  for (const d of days) byDay.set(`${d.day}\u0000${d.tenantId}`, [...(byDay.get(`${d.day}\u0000${d.tenantId}`) ?? []), d]);
  const dayRows = [...byDay.values()]
    .map((rows) => ({ day: rows[0]!.day, tenantId: rows[0]!.tenantId, t: total(rows), saved: savingsOf(rows, prices, ctx.env.SIEVE_CONSOLE_GPU_REFERENCE_MODEL) }))
    .sort((a, b) => (a.day === b.day ? b.t.cost - a.t.cost : a.day < b.day ? 1 : -1));
  const perTenant = new Map<string, typeof sums>();
  for (const s of sums) perTenant.set(s.tenantId, [...(perTenant.get(s.tenantId) ?? []), s]);
  const top = [...perTenant.entries()]
    .map(([tenantId, rows]) => ({ tenantId, t: total(rows), saved: savingsOf(rows, prices, ctx.env.SIEVE_CONSOLE_GPU_REFERENCE_MODEL) }))
    .sort((a, b) => b.t.cost - a.t.cost)
    .slice(0, 20);
  const body = html`
<h2>Top tenants, last 7 days (by spend)</h2>
<table class="num" id="top-tenants"><thead><tr><th>Tenant</th><th>Items</th><th>Failed</th><th>LLM calls</th><th>Spend</th><th>Saved (all sources)</th><th>Cache hits</th></tr></thead><tbody>
${top.length === 0 ? html`<tr><td colspan="7" class="muted">No activity.</td></tr>` : top.map(
  (r) => html`<tr data-tenant="${r.tenantId}"><td><a href="/admin?range=week&tenant=${encodeURIComponent(r.tenantId)}">${r.tenantId}</a></td><td>${int(r.t.itemsOk + r.t.itemsFailed)}</td><td>${int(r.t.itemsFailed)}</td>
<td>${int(r.t.calls)}</td><td>${usd(r.t.cost)}</td><td>${usd(r.saved.total)}</td><td>${int(r.t.hitsExact + r.t.hitsSemantic + r.t.hitsCoalesced + r.t.hitsLearned)}</td></tr>`,
)}</tbody></table>
<h2>Spend and savings per tenant per day (UTC, last 14 days)</h2>
<table class="num" id="tenant-days"><thead><tr><th>Day</th><th>Tenant</th><th>Items</th><th>LLM calls</th><th>Spend</th><th>Saved by caches</th><th>Saved by packing</th><th>Batch discount</th><th>Local GPU</th><th>Saved in all</th></tr></thead><tbody>
${dayRows.length === 0 ? html`<tr><td colspan="10" class="muted">No activity.</td></tr>` : dayRows.map(
  (d) => html`<tr><td>${d.day}</td><td>${d.tenantId}</td><td>${int(d.t.itemsOk + d.t.itemsFailed)}</td><td>${int(d.t.calls)}</td><td>${usd(d.t.cost)}</td>
<td>${usd(d.saved.exact + d.saved.semantic + d.saved.coalesced + d.saved.learned)}</td><td>${usd(d.saved.packing)}</td><td>${usd(d.saved.batchDiscount)}</td><td>${usd(d.saved.localGpu)}</td><td>${usd(d.saved.total)}</td></tr>`,
)}
</tbody></table>
<h2>API keys</h2>
<table id="keys"><thead><tr><th>Tenant</th><th>Key (SHA-256, first 16 hex)</th><th>Label</th><th>Created</th><th>Last used</th><th>Revoked</th></tr></thead><tbody>
${keys.map((k) => html`<tr><td>${k.tenantId}</td><td><code>${k.keyHash.slice(0, 16)}…</code></td><td>${k.label ?? ""}</td><td>${when(k.createdAt)}</td><td>${when(k.lastUsedAt)}</td><td>${k.revokedAt ? when(k.revokedAt) : ""}</td></tr>`)}
</tbody></table>
<p class="muted small">Last use is recorded at most once a minute per key and API process.</p>`;
  res.type("html").send(layout({ title: "Tenants", active: "tenants", body }));
}
