/**
 * The operator console at /admin (docs/console.md): Overview, Jobs, Batches, Lanes and engines,
 * Tenants, and Bull Board at /admin/queues. HTTP basic auth (SIEVE_ADMIN_USER/PASSWORD) on all of
 * it; POST actions need the CSRF form token. Pages read rollups and indexed rows only.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Queue } from "bullmq";
import { coerceError } from "@sieve/shared";
import { getBatchRow, OPEN_STATES, updateBatch } from "@sieve/shared/db/ops/batchLane";
import type { ApiContext } from "../context.js";
import { basicAuth } from "../auth.js";
import { bullBoardRouter } from "./bullboard.js";
import { csrfCheck, csrfToken } from "./csrf.js";
import type { EngineSource } from "./engines.js";
import { BadParam, esc, layout, html } from "./html.js";
import { retryFailedItems } from "./jobs.js";
import { batchPage, batchesPage } from "./pages/batches.js";
import { jobPage, jobsPage } from "./pages/jobs.js";
import { lanesPage } from "./pages/lanes.js";
import { overviewPage } from "./pages/overview.js";
import { tenantsPage } from "./pages/tenants.js";

const ASSETS = join(dirname(fileURLToPath(import.meta.url)), "assets");
const UPLOT = dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"));

type Handler = (req: Request, res: Response) => Promise<void>;

export function adminRouter(ctx: ApiContext, queues: Queue[], opts: { engines?: EngineSource | undefined } = {}): express.Router {
  const { SIEVE_ADMIN_USER: user, SIEVE_ADMIN_PASSWORD: password } = ctx.env;
  const r = express.Router();
  if (!user || !password) {
    r.use("/admin", (_req, res) => {
      res.status(404).json({ error: { code: "disabled", message: "the console is disabled: set SIEVE_ADMIN_USER and SIEVE_ADMIN_PASSWORD" } });
    });
    return r;
  }
  const engines = opts.engines;
  // Database or Redis trouble on a page: 503 with Retry-After, never a 500 (house rule).
  const page = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch((e) => {
      if (e instanceof BadParam) {
        res.status(400).type("html").send(layout({ title: "Bad request", active: "", body: html`<p class="flash">${e.message}</p>` }));
        return;
      }
      ctx.log.warn({ err: coerceError(e).message, path: req.path }, "console page failed");
      if (res.headersSent) return next(e);
      res.status(503).setHeader("Retry-After", "5");
      res.type("html").send(layout({ title: "Temporarily unavailable", active: "", body: html`<p>The console could not read its data (${coerceError(e).message.slice(0, 200)}). Retry in a few seconds.</p>` }));
    });
  };
  r.use("/admin", basicAuth(user, password));
  r.use("/admin/queues", bullBoardRouter(queues));
  r.use("/admin/assets", express.static(ASSETS, { maxAge: "1h", index: false }));
  r.get("/admin/assets/uPlot.iife.min.js", (_req, res) => res.sendFile(join(UPLOT, "uPlot.iife.min.js")));
  r.get("/admin/assets/uPlot.min.css", (_req, res) => res.sendFile(join(UPLOT, "uPlot.min.css")));
  r.use("/admin", csrfToken);
  r.get("/admin", page((req, res) => overviewPage(ctx, req, res)));
  r.get("/admin/jobs", page((req, res) => jobsPage(ctx, req, res)));
  r.get("/admin/jobs/:id", page((req, res) => jobPage(ctx, req, res)));
  r.get("/admin/batches", page((req, res) => batchesPage(ctx, req, res)));
  r.get("/admin/batches/:id", page((req, res) => batchPage(ctx, req, res)));
  r.get("/admin/lanes", page((req, res) => lanesPage(ctx, queues, engines, req, res)));
  r.get("/admin/tenants", page((req, res) => tenantsPage(ctx, req, res)));

  const form = express.urlencoded({ extended: false, limit: "4kb" });
  r.post(
    "/admin/jobs/:id/retry",
    form,
    csrfCheck,
    page(async (req, res) => {
      const id = String(req.params.id);
      const n = await retryFailedItems(ctx, id);
      ctx.log.info({ jobId: id, items: n }, "operator retried failed items");
      const msg = n === 0 ? "No failed items to retry." : `${n} failed item${n === 1 ? "" : "s"} re-enqueued.`;
      res.redirect(303, `/admin/jobs/${encodeURIComponent(id)}?flash=${encodeURIComponent(msg)}`);
    }),
  );
  r.post(
    "/admin/batches/:id/cancel",
    form,
    csrfCheck,
    page(async (req, res) => {
      const raw = String(req.params.id);
      const b = /^\d{1,15}$/.test(raw) ? await getBatchRow(ctx.db, Number(raw)) : undefined;
      if (!b) {
        res.status(404).type("html").send(layout({ title: "Batch not found", active: "batches", body: html`<p>No batch ${raw}.</p>` }));
        return;
      }
      let msg: string;
      if (!(OPEN_STATES as readonly string[]).includes(b.state)) msg = `Batch ${b.id} has already ended (state ${b.state}).`;
      else {
        // Same path as POST /v1/batches/:id/cancel: the lane's poller cancels at the provider and settles.
        await updateBatch(ctx.db, b.id, { cancelRequested: true });
        await ctx.batchLane?.kickPoll?.().catch(() => {});
        ctx.log.info({ batchId: b.id }, "operator requested a batch cancel");
        msg = `Cancellation of batch ${b.id} requested.`;
      }
      res.redirect(303, `/admin/batches/${b.id}?flash=${encodeURIComponent(msg)}`);
    }),
  );
  r.use("/admin", (req, res) => {
    res.status(404).type("html").send(layout({ title: "Not found", active: "", body: html`<p>No console page at ${esc(req.originalUrl).slice(0, 200)}.</p>` }));
  });
  return r;
}
