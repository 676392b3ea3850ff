/**
 * What the chaos bench reports per scenario, measured from Postgres (the source of truth), the
 * clients' own records and the simulator's request log. Nothing here is estimated.
 */
import pg from "pg";
import { sleep } from "../../test/support/children.js";
import type { SimLog } from "../../test/support/logged-sim.js";
import type { LoadStats, Submission } from "./chaos-load.js";

export interface ScenarioResult {
  name: string;
  /** Items of submissions the API accepted (answered with a job id). */
  accepted: number;
  /** Accepted items that ended with an answer / with an error. */
  ok: number;
  errored: number;
  /** Accepted items that are not in Postgres at all. */
  lost: number;
  /** Extra copies of submitted items in Postgres (a retried submission that became a second job). */
  duplicated: number;
  /** Sends of an item text to the LLM beyond the first (simulator request log). */
  processedTwice: number;
  /** Accepted items still without a result when the bench stopped waiting. */
  stuck: number;
  /** From the end of the last fault until every accepted item had a result (or until the bench gave up). */
  drainSeconds: number;
  /** 5xx answers other than 503 seen by the clients. */
  http500: number;
  /** Provider calls the simulator answered that have no `llm_calls` row (spend nobody sees). */
  unrecordedCalls: number;
  /** Extra detail (not part of the required keys). */
  submitted: number;
  notAccepted: number;
  http503: number;
  connErrors: number;
  crashes: number;
  drained: boolean;
  providerCalls: number;
  ledgerRows: number;
  notes: string[];
}


/**
 * Polls until every item of every accepted job has a result, or `timeoutMs` passes. Returns the
 * moment it was so (ms epoch), or undefined.
 */
export async function waitForDrain(pool: pg.Pool, stats: LoadStats, timeoutMs: number): Promise<number | undefined> {
  const jobIds = [...stats.outcomes.values()].flatMap((o) => (o.jobId ? [o.jobId] : []));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const { rows } = await pool.query<{ n: number }>(
        "select count(*)::int as n from items i where i.job_id = any($1) and not exists (select 1 from results r where r.item_id = i.id)",
        [jobIds],
      );
      if (rows[0]!.n === 0) return Date.now();
    } catch {
      // Postgres may still be coming back: keep polling.
    }
    await sleep(1_000);
  }
  return undefined;
}

export async function measure(
  pool: pg.Pool,
  name: string,
  subs: Submission[],
  stats: LoadStats,
  sim: SimLog,
  extra: { drainSeconds: number; drained: boolean; crashes: number; notes: string[] },
): Promise<ScenarioResult> {
  const { rows } = await pool.query<{ external_id: string; job_id: string; status: string | null }>(
    "select i.external_id, i.job_id, r.status from items i left join results r on r.item_id = i.id",
  );
  const byExternal = new Map<string, Array<{ job: string; status: string | null }>>();
  for (const r of rows) {
    const list = byExternal.get(r.external_id) ?? [];
    list.push({ job: r.job_id, status: r.status });
    byExternal.set(r.external_id, list);
  }
  let accepted = 0;
  let ok = 0;
  let errored = 0;
  let lost = 0;
  let stuck = 0;
  let notAccepted = 0;
  for (const s of subs) {
    const o = stats.outcomes.get(s.key);
    if (!o?.jobId) {
      notAccepted += s.items.length;
      continue;
    }
    for (const it of s.items) {
      accepted++;
      const mine = byExternal.get(it.id)?.find((x) => x.job === o.jobId);
      if (!mine) lost++;
      else if (mine.status === "ok") ok++;
      else if (mine.status === "error") errored++;
      else stuck++;
    }
  }
  let duplicated = 0;
  for (const list of byExternal.values()) duplicated += list.length - 1;

  const ledger = await pool.query<{ request_id: string | null }>("select request_id from llm_calls");
  const ids = new Set(ledger.rows.flatMap((r) => (r.request_id ? [r.request_id] : [])));
  const withoutId = ledger.rows.length - ids.size;
  // Calls answered by the simulator whose request id is in no llm_calls row, less the rows that
  // could stand for them (recorded without a request id: sent/interrupted/timed out).
  const missing = sim.requestIds.filter((id) => !ids.has(id)).length;
  const unrecordedCalls = Math.max(0, missing - withoutId);

  return {
    name,
    accepted,
    ok,
    errored,
    lost,
    duplicated,
    processedTwice: sim.textsResent,
    stuck,
    drainSeconds: extra.drainSeconds,
    http500: stats.http500,
    unrecordedCalls,
    submitted: subs.reduce((n, s) => n + s.items.length, 0),
    notAccepted,
    http503: stats.statuses["503"] ?? 0,
    connErrors: stats.connErrors,
    crashes: extra.crashes,
    drained: extra.drained,
    providerCalls: sim.requests,
    ledgerRows: ledger.rows.length,
    notes: extra.notes,
  };
}
