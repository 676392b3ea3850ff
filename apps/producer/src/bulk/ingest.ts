/**
 * Accepting a bulk body (POST /v1/bulk, an inbox file): a streamed NDJSON body (a header line with
 * the task parameters, then one item per line) goes into Postgres in chunks, with flat memory
 * however large the body.
 *
 * - Every line is validated with the same item rules as POST /v1/jobs. A bad line (invalid JSON,
 *   invalid item, duplicate id, too long) is counted and reported with its line number; it never
 *   costs the good lines around it.
 * - Items are inserted `SIEVE_BULK_CHUNK_ITEMS` at a time with one multi-row statement; duplicate
 *   ids are found by the (job_id, external_id) unique index, not by a Set of every id seen.
 * - The job is "ingesting" until the last line is in (see db/ops/batchIngest.ts). Batch lane: the
 *   items are queued for the packer in the same statement that inserts them. Realtime lane: once
 *   the upload is complete, items are read back page by page and enqueued as parcels, so an upload
 *   that breaks off leaves nothing in Redis and is simply deleted.
 */
import { Item, batchKeyFor, coerceError, fieldPath, findUnstorable, metrics, promptVersionOf, type ProviderName } from "@sieve/shared";
import { resolveCachePolicy } from "@sieve/shared/dedup/policy";
import { deleteJob, markEnqueued, setCachedCount } from "@sieve/shared/db/ops/jobs";
import { createBulkJob, finishBulkJob, insertBulkItems, type BulkItemRow } from "@sieve/shared/db/ops/batchIngest";
import { enqueueJobItems } from "@sieve/shared/db/ops/batchLane";
import type { ApiContext } from "../context.js";
import { RejectedInput } from "../errors.js";
import { recordCacheAnswers } from "../accept/answers.js";
import { hasBatchApi } from "../accept/batchLane.js";
import type { DedupAnswer, DedupContext } from "../accept/dedupHook.js";
import { enqueueStoredItems } from "../accept/parcels.js";
import { newJobId, queueFor, resolveRoute } from "../accept/resolve.js";
import { readHeader } from "./header.js";
import { splitLines } from "./lines.js";
import type { HashedBody } from "./hashed.js";

export interface LineError {
  /** 1-based line number in the body (the header is line 1). */
  line: number;
  /** The item id, when the line had one. */
  id?: string;
  field?: string;
  message: string;
}

export interface IngestReport {
  jobId: string;
  lane: "realtime" | "batch";
  provider: ProviderName;
  model: string;
  /** Lines after the header that were not blank. */
  lines: number;
  accepted: number;
  rejected: number;
  /** Items answered from a cache while ingesting. */
  cached: number;
  /** Realtime lane: parcels enqueued. */
  parcels: number;
  /** The first SIEVE_BULK_MAX_REPORTED_ERRORS bad lines. */
  errors: LineError[];
  /** Something the caller should know (e.g. the lane was changed). */
  notice?: string;
  /** The tenant (from the API key, or the inbox file's header). */
  tenantId: string;
  bytes: number;
}

/** A bulk body to accept. */
export interface BodySubmission {
  body: AsyncIterable<Buffer | string>;
  /** The caller's tenant (API key). Absent for inbox files, whose header names the tenant. */
  tenantId?: string | undefined;
  /** The request's Idempotency-Key; `body` is the source itself, hashing every byte. */
  idempotency?: { key: string; ttlHours: number; body: HashedBody } | undefined;
  /** Called after each chunk is stored (progress logs). */
  onChunk?: (p: { lines: number; accepted: number; rejected: number; bytes: number }) => void;
}

/** One line's JSON may be at most this many bytes longer than its text: id, quotes, escapes. */
function maxLineBytes(maxTextChars: number): number {
  // A JSON-escaped character can take 6 bytes (\u00e9); 4 bytes per char covers real UTF-8 text.
  return maxTextChars * 6 + 1_024;
}

interface Pending {
  line: number;
  seq: number;
  id: string;
  text: string;
}

export async function ingestBody(ctx: ApiContext, input: BodySubmission): Promise<IngestReport> {
  const env = ctx.env;
  const maxErrors = env.SIEVE_BULK_MAX_REPORTED_ERRORS;
  const itemSchema = Item({ maxTextChars: env.SIEVE_MAX_TEXT_CHARS });
  const lines = splitLines(input.body, maxLineBytes(env.SIEVE_MAX_TEXT_CHARS));

  const { header, bytes: headerBytes } = await readHeader(ctx, lines, input.tenantId);
  let bytes = headerBytes;
  const { tenantId, params, options } = header;
  const route = resolveRoute(ctx, params, options.provider, options.model);
  let lane = options.lane;
  let notice: string | undefined;
  if (lane === "batch") {
    if (!ctx.batchLane) {
      throw new RejectedInput('lane: the batch lane is not enabled on this server (SIEVE_BATCH_LANE); use "realtime"', [{ line: header.line, field: "lane", message: "not enabled" }]);
    }
    if (!hasBatchApi(route.provider)) {
      // docs/batch-lane.md: vLLM has no batch API and no batch discount: its items go through the
      // realtime lane (at the same price) instead of being refused.
      lane = "realtime";
      notice = `provider ${route.provider} has no batch API: the items go through the realtime lane`;
    }
  }
  if (lane === "realtime") queueFor(ctx, route);

  const key = batchKeyFor(env, { tenantId, params }, route, lane);
  const jobId = newJobId();
  const idem = input.idempotency;
  await createBulkJob(
    ctx.db,
    {
      id: jobId,
      tenantId,
      task: params.task,
      params,
      lane,
      provider: route.provider,
      model: route.model,
      promptVersion: promptVersionOf(params),
      batchKey: key,
      cacheOptions: options.cache ?? null,
    },
    idem ? { key: idem.key, route: "bulk", requestHash: null, ttlHours: idem.ttlHours } : undefined,
  );
  const log = ctx.log.child({ jobId, tenantId, lane, provider: route.provider });
  // A bulk body's cache policy: semantic lookups only when its header asks, never the learned cache (dedup/policy.ts).
  const dctx: DedupContext = { tenantId, params, route, policy: resolveCachePolicy(env, params.task, options.cache, "bulk") };
  const useDedup = ctx.dedup && dctx.policy.mode !== "bypass" ? ctx.dedup : undefined;

  const report: IngestReport = { jobId, lane, provider: route.provider, model: route.model, lines: 0, accepted: 0, rejected: 0, cached: 0, parcels: 0, errors: [], tenantId, bytes: 0, ...(notice ? { notice } : {}) };
  const reject = (e: LineError) => {
    report.rejected++;
    if (report.errors.length < maxErrors) report.errors.push(e);
  };

  let chunk: Pending[] = [];
  const idsInChunk = new Map<string, number>();
  let seq = 0;

  const flush = async () => {
    if (chunk.length === 0) return;
    const rows: BulkItemRow[] = chunk.map((p) => ({ seq: p.seq, externalId: p.id, text: p.text }));
    let answers = new Map<number, DedupAnswer>();
    if (useDedup) {
      const found = await useDedup.lookup(chunk.map((p) => ({ id: p.id, text: p.text })), dctx);
      found.cacheKeys.forEach((k, i) => {
        if (rows[i]) rows[i].cacheKey = k;
      });
      answers = found.answers;
    }
    // Fast path: no cache answers, batch lane -> items and their queue rows in one statement.
    const queueInSameStatement = lane === "batch" && answers.size === 0;
    const inserted = await insertBulkItems(ctx.db, { id: jobId, tenantId }, rows, queueInSameStatement ? { batchKey: key, provider: route.provider, model: route.model } : undefined);
    const idBySeq = new Map(inserted.map((r) => [r.seq, r.id]));
    for (const p of chunk) {
      if (!idBySeq.has(p.seq)) reject({ line: p.line, id: p.id, field: "id", message: `duplicate item id "${p.id}" (an earlier line of this upload has it)` });
    }
    report.accepted += inserted.length;
    if (answers.size > 0) {
      const hits = [...answers].flatMap(([idx, answer]) => {
        const itemId = idBySeq.get(chunk[idx]!.seq);
        return itemId === undefined ? [] : [{ itemId, answer }];
      });
      await recordCacheAnswers(ctx, { jobId, tenantId, route }, hits);
      report.cached += hits.length;
    }
    if (lane === "batch" && !queueInSameStatement) {
      const answered = new Set([...answers.keys()].map((i) => chunk[i]!.seq));
      await enqueueJobItems(ctx.db, jobId, inserted.filter((r) => !answered.has(r.seq)).map((r) => r.id));
    }
    chunk = [];
    idsInChunk.clear();
    input.onChunk?.({ lines: report.lines, accepted: report.accepted, rejected: report.rejected, bytes });
  };

  try {
    for await (const line of lines) {
      bytes += line.bytes + 1;
      if (line.tooLong) {
        report.lines++;
        seq++;
        reject({ line: line.no, message: `line longer than ${maxLineBytes(env.SIEVE_MAX_TEXT_CHARS)} bytes` });
        continue;
      }
      if (line.text.trim() === "") continue;
      report.lines++;
      const mySeq = seq++;
      let value: unknown;
      try {
        value = JSON.parse(line.text);
      } catch {
        reject({ line: line.no, message: "not valid JSON" });
        continue;
      }
      // A line Postgres could not store is one bad line, not a failed upload.
      const bad = findUnstorable(value);
      if (bad) {
        const id = value && typeof value === "object" && typeof (value as { id?: unknown }).id === "string" && !findUnstorable((value as { id: string }).id) ? (value as { id: string }).id.slice(0, 128) : undefined;
        reject({ line: line.no, ...(id ? { id } : {}), field: bad.field, message: bad.message });
        continue;
      }
      const r = itemSchema.safeParse(value);
      if (!r.success) {
        const issue = r.error.issues[0]!;
        const id = value && typeof value === "object" && typeof (value as { id?: unknown }).id === "string" ? (value as { id: string }).id.slice(0, 128) : undefined;
        const field = issue.code === "unrecognized_keys" ? issue.keys.join(",") : fieldPath(issue.path);
        const message = issue.code === "unrecognized_keys" ? "unknown field" : issue.code === "invalid_type" && /received undefined/.test(issue.message) ? "is required" : issue.message;
        reject({ line: line.no, ...(id ? { id } : {}), field, message });
        continue;
      }
      const earlier = idsInChunk.get(r.data.id);
      if (earlier !== undefined) {
        reject({ line: line.no, id: r.data.id, field: "id", message: `duplicate item id "${r.data.id}" (also line ${earlier})` });
        continue;
      }
      idsInChunk.set(r.data.id, line.no);
      chunk.push({ line: line.no, seq: mySeq, id: r.data.id, text: r.data.text });
      if (chunk.length >= env.SIEVE_BULK_CHUNK_ITEMS) await flush();
    }
    await flush();
  } catch (e) {
    // The upload broke off (client gone, database error): nothing of it stays.
    await deleteJob(ctx.db, jobId).catch(() => {});
    throw e;
  }
  report.bytes = bytes;

  if (report.accepted === 0) {
    await deleteJob(ctx.db, jobId).catch(() => {});
    throw new RejectedInput(`body: no valid item line (${report.rejected} rejected)`, report.errors.slice(0, 20) as unknown as Array<Record<string, unknown>>, "no_valid_items");
  }
  metrics.itemsSubmitted.inc({ task: params.task, lane }, report.accepted);
  if (report.cached > 0) await setCachedCount(ctx.db, jobId, report.cached);

  // The key gets the hash of every body byte in the transaction that accepts the job.
  const keyDone = idem ? { idempotency: { requestHash: idem.body.digest(), response: bulkAnswer(report) } } : {};
  if (lane === "batch") {
    await finishBulkJob(ctx.db, jobId, report.accepted, { enqueued: true, ...keyDone });
    await ctx.batchLane!.kick().catch((e) => log.warn({ err: coerceError(e).message }, "could not kick the batch packer; its next tick packs the items"));
  } else {
    // enqueued=false until every parcel is in Redis: if this process dies now, the sweeper
    // enqueues what is left (its query only looks at "pending" jobs, which this one now is).
    await finishBulkJob(ctx.db, jobId, report.accepted, { enqueued: false, ...keyDone });
    try {
      report.parcels = await enqueueStoredItems(ctx, { jobId, tenantId, params, route, batchKey: key }, useDedup ? dctx : undefined);
      await markEnqueued(ctx.db, jobId, report.parcels);
    } catch (e) {
      log.warn({ err: coerceError(e).message }, "bulk job stored but not fully enqueued; the sweeper will enqueue the rest");
      report.notice = [report.notice, "the queue was not reachable for every item: the rest is enqueued by the sweeper within minutes"].filter(Boolean).join("; ");
    }
  }
  log.info({ accepted: report.accepted, rejected: report.rejected, cached: report.cached, parcels: report.parcels, bytes }, "bulk job ingested");
  return report;
}

/** The 202 body of POST /v1/bulk (also what a replay with the same Idempotency-Key answers). */
export function bulkAnswer(out: IngestReport) {
  return {
    id: out.jobId,
    status: "pending",
    lane: out.lane,
    provider: out.provider,
    model: out.model,
    counts: { lines: out.lines, accepted: out.accepted, rejected: out.rejected, cached: out.cached },
    errors: out.errors,
    ...(out.notice ? { notice: out.notice } : {}),
    links: { self: `/v1/jobs/${out.jobId}`, results: `/v1/jobs/${out.jobId}/results` },
  };
}
