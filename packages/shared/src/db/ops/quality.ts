/** Answer-quality reads (docs/quality.md): per-job re-check agreement and fine-tune export rows. */
import { sql } from "drizzle-orm";
import { queryRows, type Db } from "../client.js";

export interface JobQuality {
  /** Items of this job asked again alone, with a conclusive answer. */
  rechecked: number;
  agreed: number;
  /** agreed / rechecked; null when nothing was re-checked. */
  agreement: number | null;
  byItemsPerCall: Array<{ itemsPerCall: number; rechecked: number; agreed: number }>;
  /** Items answered by the learned cache, and how many of those audits disagreed. */
  learned: { answered: number; audited: number; disagreed: number };
}

export async function jobQuality(db: Db, jobId: string): Promise<JobQuality> {
  const [checks, learned] = await Promise.all([
    queryRows<{ items_per_call: number; n: number; agreed: number }>(
      db,
      sql`select items_per_call, count(*)::int as n, count(*) filter (where agree)::int as agreed
          from quality_checks where job_id = ${jobId} and agree is not null group by items_per_call order by items_per_call`,
    ),
    queryRows<{ answered: number; audited: number; disagreed: number }>(
      db,
      sql`select (select count(*)::int from results where job_id = ${jobId} and cache = 'learned') as answered,
                 count(a.id)::int as audited, count(a.id) filter (where a.agree = false)::int as disagreed
          from cache_audits a join items i on i.id = a.item_id where i.job_id = ${jobId} and a.kind = 'learned'`,
    ),
  ]);
  const rechecked = checks.reduce((s, r) => s + r.n, 0);
  const agreed = checks.reduce((s, r) => s + r.agreed, 0);
  return {
    rechecked,
    agreed,
    agreement: rechecked > 0 ? agreed / rechecked : null,
    byItemsPerCall: checks.map((r) => ({ itemsPerCall: r.items_per_call, rechecked: r.n, agreed: r.agreed })),
    learned: learned[0] ?? { answered: 0, audited: 0, disagreed: 0 },
  };
}

export interface FineTuneRow {
  id: number;
  text: string;
  output: unknown;
  params: unknown;
  createdAt: string;
}

/**
 * One page of a tenant's items answered by an LLM call (never a cache hit, never an error),
 * leaving out items whose re-check disagreed, in item id order after `afterId`.
 */
export async function fineTuneRows(db: Db, q: { tenantId: string; task: string; since: Date | undefined; afterId: number; limit: number }): Promise<FineTuneRow[]> {
  return queryRows<FineTuneRow>(
    db,
    sql`select i.id::int as id, i.text, r.output, j.params, r.created_at::text as "createdAt"
        from results r join items i on i.id = r.item_id join jobs j on j.id = r.job_id
        where r.tenant_id = ${q.tenantId} and j.tenant_id = ${q.tenantId} and j.task = ${q.task}
          and r.status = 'ok' and r.cache is null and r.llm_call_id is not null
          and r.item_id > ${q.afterId}
          ${q.since ? sql`and r.created_at >= ${q.since.toISOString()}` : sql``}
          and not exists (select 1 from quality_checks c where c.item_id = r.item_id and c.agree = false)
        order by r.item_id limit ${q.limit}`,
  );
}
