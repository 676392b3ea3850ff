/**
 * The nightly bulk run: a BullMQ job scheduler with the SIEVE_BULK_CRON pattern ingests
 * every `*.jsonl` file in SIEVE_BULK_INBOX, then kicks the batch packer.
 *
 * A file is a bulk body whose header also names its tenant: `{"tenant":"acme","task":"classify",
 * "labels":[...],"lane":"batch"}`. Files move inbox -> processing/ (an atomic rename claims a file,
 * so two API processes never ingest it twice) -> done/ with a `<name>.report.json` beside it, or
 * failed/ when the file itself is unusable (bad header, no valid line). A file left in processing/
 * by a process that died is moved back to the inbox once SIEVE_BULK_TIMEOUT_MS has passed (its
 * half-ingested job is deleted by the batch lane's packer tick).
 */
import { createReadStream } from "node:fs";
import { mkdir, readdir, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Queue, Worker } from "bullmq";
import { BULK_INBOX_QUEUE, BulkInboxJob, ScheduleKeeper, coerceError, createRedis, safeErrorMessage } from "@sieve/shared";
import type { ApiContext } from "../context.js";
import { AcceptError } from "../errors.js";
import { acceptJob, type IngestReport } from "../accept/acceptJob.js";

export interface InboxHandle {
  /** Runs one scan now (tests, operators). */
  scanNow(): Promise<InboxScan>;
  close(): Promise<void>;
}

export interface InboxScan {
  ingested: Array<{ file: string; jobId: string; accepted: number; rejected: number }>;
  failed: Array<{ file: string; error: string }>;
}

async function ensureDirs(inbox: string): Promise<void> {
  for (const d of ["", "processing", "done", "failed"]) await mkdir(path.join(inbox, d), { recursive: true });
}

/** Moves files a dead process left in processing/ back to the inbox. */
async function recoverStale(inbox: string, olderThanMs: number): Promise<void> {
  const dir = path.join(inbox, "processing");
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    const s = await stat(p).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > olderThanMs) await rename(p, path.join(inbox, name)).catch(() => {});
  }
}

export async function scanInbox(ctx: ApiContext): Promise<InboxScan> {
  const inbox = ctx.env.SIEVE_BULK_INBOX;
  const out: InboxScan = { ingested: [], failed: [] };
  if (!inbox) return out;
  await ensureDirs(inbox);
  await recoverStale(inbox, ctx.env.SIEVE_BULK_TIMEOUT_MS);
  const names = (await readdir(inbox, { withFileTypes: true })).filter((d) => d.isFile() && d.name.endsWith(".jsonl")).map((d) => d.name).sort();
  for (const name of names) {
    const claimed = path.join(inbox, "processing", name);
    try {
      await rename(path.join(inbox, name), claimed);
    } catch {
      continue; // another process claimed it
    }
    const log = ctx.log.child({ file: name });
    let report: IngestReport;
    try {
      report = await acceptJob(ctx, { body: createReadStream(claimed, { highWaterMark: 256 * 1024 }) });
    } catch (e) {
      if (e instanceof AcceptError) {
        // Refused (a bad header, no valid line, no queue for its provider): the file goes to failed/
        // with the refusal, as an HTTP caller would get it.
        await writeFile(path.join(inbox, "failed", `${name}.report.json`), JSON.stringify({ file: name, error: e.describe() }, null, 2));
        await rename(claimed, path.join(inbox, "failed", name)).catch(() => {});
        out.failed.push({ file: name, error: e.message });
        log.warn({ err: e.message }, "inbox file rejected");
      } else {
        // Database or queue trouble: the file goes back to the inbox for the next run.
        await rename(claimed, path.join(inbox, name)).catch(() => {});
        out.failed.push({ file: name, error: coerceError(e).message });
        log.error({ err: coerceError(e).message }, "inbox file not ingested; it stays in the inbox");
      }
      continue;
    }
    const summary = { file: name, jobId: report.jobId, tenant: report.tenantId, lane: report.lane, lines: report.lines, accepted: report.accepted, rejected: report.rejected, errors: report.errors, ...(report.notice ? { notice: report.notice } : {}) };
    await writeFile(path.join(inbox, "done", `${name}.report.json`), JSON.stringify(summary, null, 2));
    await rename(claimed, path.join(inbox, "done", name));
    out.ingested.push({ file: name, jobId: report.jobId, accepted: report.accepted, rejected: report.rejected });
    log.info({ jobId: report.jobId, accepted: report.accepted, rejected: report.rejected }, "inbox file ingested");
  }
  // "Nightly": whatever waits in the lane (files just ingested, batch-lane jobs of the day) is packed now.
  if (ctx.batchLane) await ctx.batchLane.kick().catch((e) => ctx.log.warn({ err: coerceError(e).message }, "could not kick the batch packer"));
  return out;
}

/** Starts the job scheduler (SIEVE_BULK_CRON) and the worker that scans the inbox. */
export async function startInbox(ctx: ApiContext): Promise<InboxHandle> {
  const env = ctx.env;
  const connection = createRedis(env.REDIS_URL, "worker");
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const queue = new Queue(BULK_INBOX_QUEUE, { connection, prefix });
  ctx.monitor.watch(connection, "inbox redis");
  ctx.monitor.watch(queue, "inbox queue");
  // The cron lives in Redis: re-created when Redis comes back without it (docs/operations.md#outages).
  const schedules = new ScheduleKeeper({ connection, log: ctx.log, everyMs: env.SIEVE_SCHEDULE_CHECK_MS, monitor: ctx.monitor });
  await schedules.add(queue, "bulk-inbox", { pattern: env.SIEVE_BULK_CRON!, tz: env.SIEVE_BULK_CRON_TZ }, { name: "scan-inbox", data: { kind: "scan-inbox" }, opts: { removeOnComplete: 50, removeOnFail: 50 } });
  schedules.start();
  const worker = new Worker(
    BULK_INBOX_QUEUE,
    async (job) => {
      const parsed = BulkInboxJob.safeParse(job.data);
      if (!parsed.success) return { skipped: "unknown payload" };
      return scanInbox(ctx);
    },
    { connection, prefix, concurrency: 1 },
  );
  ctx.monitor.watch(worker, "inbox worker");
  worker.on("failed", (_job, e) => {
    if (!ctx.monitor.report(e, "inbox")) ctx.log.warn({ err: safeErrorMessage(e) }, "inbox run failed; the next run retries");
  });
  ctx.log.info({ cron: env.SIEVE_BULK_CRON, tz: env.SIEVE_BULK_CRON_TZ, inbox: env.SIEVE_BULK_INBOX }, "nightly bulk inbox scheduled");
  return {
    scanNow: () => scanInbox(ctx),
    async close() {
      schedules.close();
      await worker.close().catch(() => {});
      await queue.close().catch(() => {});
      await connection.quit().catch(() => {});
    },
  };
}
