/**
 * Bull Board at /admin/queues, for queue-level work (retry, clean, pause). Every queue Sieve runs is
 * listed with what it is for; a parcel links to its Sieve job in the console (`externalJobUrl`), the
 * menu links back to the console (`uiConfig.miscLinks`). Bull Board's page asks a web-font CDN for
 * its fonts; that <link> is removed here so the page makes no request outside Sieve (the UI falls
 * back to system fonts). Options: @bull-board/api `QueueAdapterOptions` and `UIConfig` typings of
 * the installed version (https://github.com/felixmosh/bull-board).
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { Queue } from "bullmq";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { BATCH_LANE_QUEUE, BULK_INBOX_QUEUE, CACHE_AUDIT_QUEUE, CACHE_FILL_QUEUE, MAINTENANCE_QUEUE } from "@sieve/shared";

const DESCRIPTIONS: Record<string, string> = {
  [MAINTENANCE_QUEUE]: "Sweeper and housekeeping (repairs jobs no parcel would answer).",
  [BATCH_LANE_QUEUE]: "Batch lane kicks: pack waiting items, poll provider batches. Items wait in Postgres, not here.",
  [CACHE_FILL_QUEUE]: "Semantic-cache fills after LLM answers (idle unless the semantic cache is on).",
  [CACHE_AUDIT_QUEUE]: "Semantic hits re-checked by the LLM: the live false-hit rate (idle unless the semantic cache is on).",
  [BULK_INBOX_QUEUE]: "Nightly bulk inbox run (SIEVE_BULK_CRON).",
};

function describe(name: string): string {
  if (name.startsWith("realtime-")) return `Parcels for ${name.slice(9)}: packed into multi-item calls. returnValue: items, ok, failed; a parcel with failed items ends failed with the reason.`;
  return DESCRIPTIONS[name] ?? "";
}

/** A parcel's console link: parcels carry the Sieve job id in `data.jobId`. */
export function parcelUrl(job: { data?: unknown }): { href: string; displayText: string } {
  const jobId = (job.data as { jobId?: unknown } | undefined)?.jobId;
  return typeof jobId === "string" && /^[\w-]{1,128}$/.test(jobId)
    ? { href: `/admin/jobs/${jobId}`, displayText: "Open in Sieve console" }
    : { href: "/admin/jobs", displayText: "Sieve jobs" };
}

/** Strips the web-font <link> from Bull Board's HTML page; other responses pass untouched. */
function offlineHtml(req: Request, res: Response, next: NextFunction): void {
  const send = res.send.bind(res);
  res.send = ((body: unknown) => {
    if (typeof body === "string" && body.includes("<html")) {
      body = body.replace(/<link[^>]+href="https?:\/\/[^"]*"[^>]*>/g, "");
    }
    return send(body);
  }) as Response["send"];
  next();
}

export function bullBoardRouter(queues: Queue[]): express.Router {
  const adapter = new ExpressAdapter();
  adapter.setBasePath("/admin/queues");
  const seen = new Set<string>();
  const unique = queues.filter((q) => (seen.has(q.name) ? false : (seen.add(q.name), true)));
  createBullBoard({
    queues: unique.map((q) => new BullMQAdapter(q, { description: describe(q.name), externalJobUrl: (job) => parcelUrl(job) })),
    serverAdapter: adapter,
    options: {
      uiConfig: {
        boardTitle: "Sieve queues",
        hideDocsLink: true,
        miscLinks: [
          { text: "Sieve console", url: "/admin" },
          { text: "Jobs", url: "/admin/jobs" },
          { text: "Batches", url: "/admin/batches" },
        ],
      },
    },
  });
  const r = express.Router();
  r.use(offlineHtml, adapter.getRouter());
  return r;
}
