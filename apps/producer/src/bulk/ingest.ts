/**
 * Bulk ingestion: a streamed NDJSON body (a header line with the task parameters, then
 * one item per line) goes into Postgres in chunks, with flat memory however large the body.
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
import { randomUUID } from "node:crypto";
import { HttpError, Item, batchKey, coerceError, fieldPath, findUnstorable, metrics, promptVersionOf, recordOutcome, type ProviderName, type TaskParams } from "@sieve/shared";
import { deleteJob, markEnqueued, setCachedCount } from "@sieve/shared/db/ops/jobs";
import { createBulkJob, finishBulkJob, insertBulkItems, tenantExists, type BulkItemRow } from "@sieve/shared/db/ops/batchIngest";
import { enqueueJobItems } from "@sieve/shared/db/ops/batchLane";
import type { ApiContext } from "../context.js";
import { resolveRoute, type DedupContext } from "../submit.js";
import { enqueueRealtime } from "./parcels.js";
import { BulkHeader, InboxHeader, headerParams } from "./header.js";
import { splitLines } from "./lines.js";
import type { HashedBody } from "./hashed.js";
import { hasBatchApi, type BatchLaneApi } from "./lane.js";

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

export interface IngestOptions {
  /** The caller's tenant (API key). Absent for inbox files, whose header names the tenant. */
  tenantId?: string;
  lane?: BatchLaneApi;
  /** The request's Idempotency-Key; `body` is the source itself, hashing every byte. */
  idempotency?: { key: string; ttlHours: number; body: HashedBody };
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

export async function ingestBulk(ctx: ApiContext, source: AsyncIterable<Buffer | string>, opts: IngestOptions): Promise<IngestReport> {
  const env = ctx.env;
  const maxErrors = env.SIEVE_BULK_MAX_REPORTED_ERRORS;
  const itemSchema = Item({ maxItems: Number.MAX_SAFE_INTEGER, maxTextChars: env.SIEVE_MAX_TEXT_CHARS });
  const lines = splitLines(source, maxLineBytes(env.SIEVE_MAX_TEXT_CHARS));

  // --- Header --------------------------------------------------------------------------------
  let headerLine: { no: number; text: string } | undefined;
  let bytes = 0;
  for (;;) {
    const next = await lines.next();
    if (next.done) break;
    bytes += next.value.bytes + 1;
    if (next.value.tooLong) throw headerError(next.value.no, "header: line too long");
    if (next.value.text.trim() === "") continue;
    headerLine = next.value;
    break;
  }
  if (!headerLine) throw new HttpError(400, "invalid_request", "body: empty; expected a header line, then one item per line", [{ line: 1, field: "header", message: "missing" }]);
  let rawHeader: unknown;
  try {
    rawHeader = JSON.parse(headerLine.text);
  } catch {
    throw headerError(headerLine.no, "header: not valid JSON");
  }
  refuseAutoLane(rawHeader, headerLine.no);
  const unstorable = findUnstorable(rawHeader);
  if (unstorable) {
    throw new HttpError(400, "invalid_request", `header (line ${headerLine.no}): ${unstorable.field}: ${unstorable.message}`, [{ line: headerLine.no, ...unstorable }]);
  }
  const parsed = opts.tenantId ? BulkHeader.safeParse(rawHeader) : InboxHeader.safeParse(rawHeader);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      line: headerLine!.no,
      field: i.code === "unrecognized_keys" ? i.keys.map((k) => fieldPath([...i.path, k])).join(",") : fieldPath(i.path),
      message: i.code === "unrecognized_keys" ? "unknown field" : i.message,
    }));
    const first = issues[0]!;
    throw new HttpError(400, "invalid_request", `header (line ${first.line}): ${first.field}: ${first.message}`, issues.slice(0, 20));
  }
  const header = parsed.data;
  const tenantId: string = opts.tenantId ?? (header as { tenant?: string }).tenant ?? "";
  if (!opts.tenantId && !(await tenantExists(ctx.db, tenantId))) {
    throw new HttpError(400, "invalid_request", `header (line ${headerLine.no}): tenant: "${tenantId}" is not a known tenant`, [{ line: headerLine.no, field: "tenant", message: "unknown tenant" }]);
  }
  const params: TaskParams = headerParams(header);
  const route = resolveRoute(ctx, params, header.provider, header.model);
  let lane = header.lane;
  let notice: string | undefined;
  if (lane === "batch") {
    if (!opts.lane) {
      throw new HttpError(400, "invalid_request", 'lane: the batch lane is not enabled on this server (SIEVE_BATCH_LANE); use "realtime"', [{ line: headerLine.no, field: "lane", message: "not enabled" }]);
    }
    if (!hasBatchApi(route.provider)) {
      // docs/batch-lane.md: vLLM has no batch API and no batch discount: its items go through the
      // realtime lane (at the same price) instead of being refused.
      lane = "realtime";
      notice = `provider ${route.provider} has no batch API: the items go through the realtime lane`;
    }
  }
  const queue = ctx.queues.get(route.provider);
  if (lane === "realtime" && !queue) throw new HttpError(503, "unavailable", `no queue for provider ${route.provider}`);

  const key = batchKey({ tenantId, params, provider: route.provider, model: route.model, lane, mixTenants: env.SIEVE_MIX_TENANTS });
  const jobId = `job_${randomUUID().replaceAll("-", "")}`;
  const idem = opts.idempotency;
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
      cacheOptions: header.cache ?? null,
    },
    idem ? { key: idem.key, route: "bulk", requestHash: null, ttlHours: idem.ttlHours } : undefined,
  );
  const log = ctx.log.child({ jobId, tenantId, lane, provider: route.provider });
  // Semantic lookups embed every text on the CPU (tens of items/s with the embedded model): a
  // bulk upload uses them only when its header asks (cache.semantic: true); the exact cache is free.
  // The learned cache (docs/quality.md) serves realtime requests only: bulk neither uses nor teaches it.
  const dctx: DedupContext = { tenantId, params, route, cache: { mode: "use", ...header.cache, semantic: header.cache?.semantic ?? false, learned: false } };
  const useDedup = ctx.dedup && header.cache?.mode !== "bypass" ? ctx.dedup : undefined;

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
    let answers = new Map<number, { output: unknown; cache: "exact" | "semantic" | "coalesced" | "learned"; source?: unknown; savedUsd?: number }>();
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
      const hits = [...answers.entries()].flatMap(([idx, a]) => {
        const itemId = idBySeq.get(chunk[idx]!.seq);
        if (itemId === undefined) return [];
        return [{ itemId, jobId, tenantId, status: "ok" as const, output: a.output, cache: a.cache, cacheSource: a.source ?? null, provider: route.provider, model: route.model, savedUsd: a.savedUsd ?? 0 }];
      });
      await recordOutcome(ctx.db, null, hits);
      report.cached += hits.length;
      for (const h of hits) metrics.itemsFinished.inc({ status: "ok", cache: h.cache });
    }
    if (lane === "batch" && !queueInSameStatement) {
      const answered = new Set([...answers.keys()].map((i) => chunk[i]!.seq));
      await enqueueJobItems(ctx.db, jobId, inserted.filter((r) => !answered.has(r.seq)).map((r) => r.id));
    }
    chunk = [];
    idsInChunk.clear();
    opts.onChunk?.({ lines: report.lines, accepted: report.accepted, rejected: report.rejected, bytes });
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
    throw new HttpError(400, "no_valid_items", `body: no valid item line (${report.rejected} rejected)`, report.errors.slice(0, 20) as unknown as Array<Record<string, unknown>>);
  }
  metrics.itemsSubmitted.inc({ task: params.task, lane }, report.accepted);
  if (report.cached > 0) await setCachedCount(ctx.db, jobId, report.cached);

  // The key gets the hash of every body byte in the transaction that accepts the job.
  const keyDone = idem ? { idempotency: { requestHash: idem.body.digest(), response: bulkAnswer(report) } } : {};
  if (lane === "batch") {
    await finishBulkJob(ctx.db, jobId, report.accepted, { enqueued: true, ...keyDone });
    await opts.lane!.kick().catch((e) => log.warn({ err: coerceError(e).message }, "could not kick the batch packer; its next tick packs the items"));
  } else {
    // enqueued=false until every parcel is in Redis: if this process dies now, the sweeper
    // enqueues what is left (its query only looks at "pending" jobs, which this one now is).
    await finishBulkJob(ctx.db, jobId, report.accepted, { enqueued: false, ...keyDone });
    try {
      report.parcels = await enqueueRealtime(ctx, { jobId, tenantId, params, route, key, dctx, useDedup: !!useDedup });
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

function headerError(line: number, message: string): HttpError {
  return new HttpError(400, "invalid_request", `${message} (line ${line}); the first line must be a JSON object with the task parameters`, [{ line, field: "header", message }]);
}

/**
 * `lane: "auto"` (and its `deadline`) is not offered for bulk bodies (docs/gpu-lane.md, "Bulk
 * uploads and lane auto"): the router plans a request's lanes from its item count before anything
 * is stored, and refuses an unmeetable deadline with nothing written; a bulk body is stored and
 * queued as it streams, its count known only at its last line.
 */
export function refuseAutoLane(rawHeader: unknown, line: number): void {
  if (typeof rawHeader !== "object" || rawHeader === null) return;
  const h = rawHeader as { lane?: unknown; deadline?: unknown };
  const why = 'is not available for bulk uploads (the lane router plans a request from its item count before storing anything; a bulk body streams); use "batch" or "realtime", or POST /v1/jobs with lane "auto"';
  if (h.lane === "auto") {
    throw new HttpError(400, "invalid_request", `header (line ${line}): lane: "auto" ${why}`, [{ line, field: "lane", message: '"auto" is not available for bulk uploads' }]);
  }
  if (h.deadline !== undefined) {
    throw new HttpError(400, "invalid_request", `header (line ${line}): deadline: only with lane "auto", which ${why}`, [{ line, field: "deadline", message: "not available for bulk uploads" }]);
  }
}
