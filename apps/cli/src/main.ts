#!/usr/bin/env -S node --import tsx
/**
 * sieve: the command-line client, and `sieve start`, which runs Sieve itself (start.ts).
 *
 *   sieve submit items.jsonl --task classify --labels World,Sports,Business --lane batch
 *   sieve submit items.jsonl --task translate --target-language de
 *   sieve status <jobId> [--wait 30s]
 *   sieve results <jobId> > out.jsonl
 *   sieve batches [--limit 20]            sieve batch <id>            sieve cancel-batch <id>
 *   sieve export-fine-tune --task classify [--since 2026-11-01] > train.jsonl   (docs/quality.md)
 *   sieve start                           (the server: SIEVE_ROLE api | workers | gpu | all, env-configured)
 *
 * Server and key: --url / --key, or SIEVE_URL / SIEVE_API_KEY (default url http://127.0.0.1:8080).
 * `submit` streams the file to POST /v1/bulk (a header line built from the flags, then the file's
 * lines as they are read: memory stays flat), shows progress on stderr and prints the job id on
 * stdout. A file whose first line is already a header (`{"task": ...}`) is sent as it is.
 *
 * Every submission carries one Idempotency-Key (a fresh UUID), sent again on the CLI's own retries
 * (no answer, 502/503/504, 409): a retried upload never becomes a second job (docs/retries.md).
 * Every 4xx/5xx is printed with the server's error code and message.
 */
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { Progress } from "./progress.js";
import { NetworkError, call, streamPost } from "./http.js";
import { startLazily } from "./startLazily.js";

const USAGE = `usage:
  sieve submit <file.jsonl> --task classify --labels a,b,c [--lane batch|realtime] [--provider openai|anthropic|vllm] [--model M] [--instructions TEXT]
  sieve submit <file.jsonl> --task translate --target-language de [--source-language en] [...]
  sieve status <jobId> [--wait 30s]
  sieve results <jobId>            (NDJSON on stdout)
  sieve batches [--limit N]        sieve batch <id>        sieve cancel-batch <id>
  sieve export-fine-tune --task classify|translate [--since ISO-DATE]   (fine-tuning JSONL on stdout)
  sieve start                      (runs Sieve itself; configured by env, see README "Configuration")
options: --url URL (SIEVE_URL)  --key KEY (SIEVE_API_KEY)  --no-progress`;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface Conn {
  url: string;
  key: string;
}

function conn(values: { url?: string | undefined; key?: string | undefined }, env: NodeJS.ProcessEnv): Conn {
  const url = (values.url ?? env.SIEVE_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  const key = values.key ?? env.SIEVE_API_KEY;
  if (!key) throw new CliError("no API key: pass --key or set SIEVE_API_KEY", 2);
  return { url, key };
}

/** The server's error (code, message, details) as the CLI prints it. */
export function errorOf(status: number, text: string): CliError {
  let msg = text.trim() || "(empty body)";
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } };
    if (body.error) msg = `${body.error.code}: ${body.error.message}${body.error.details ? `\n${JSON.stringify(body.error.details, null, 2)}` : ""}`;
  } catch {
    /* not JSON: print it as it came */
  }
  return new CliError(`HTTP ${status}: ${msg}`);
}

async function apiError(res: Response): Promise<CliError> {
  return errorOf(res.status, await res.text().catch(() => ""));
}

/** Retries of one submission (same Idempotency-Key) after no answer, 502/503/504 or 409. */
const SUBMIT_ATTEMPTS = 5;
const RETRY_STATUSES = new Set([409, 502, 503, 504]);

/** Seconds of a Retry-After header (capped), else exponential from 1 s. */
function retryDelayMs(retryAfter: string | string[] | undefined, attempt: number): number {
  const s = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  return Number.isFinite(s) && s >= 0 ? Math.min(s, 30) * 1_000 : Math.min(1_000 * 2 ** (attempt - 1), 15_000);
}

/** The header line built from the flags (the same fields as POST /v1/jobs, minus items). */
export function headerFromFlags(v: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const task = v.task;
  if (task !== "classify" && task !== "translate") throw new CliError("--task classify|translate is required (or put a header line first in the file)", 2);
  const h: Record<string, unknown> = { task };
  if (task === "classify") {
    if (typeof v.labels !== "string") throw new CliError("--labels a,b,c is required for --task classify", 2);
    h.labels = v.labels.split(",").map((s) => s.trim()).filter(Boolean);
  } else {
    if (typeof v["target-language"] !== "string") throw new CliError("--target-language is required for --task translate", 2);
    h.targetLanguage = v["target-language"];
    if (typeof v["source-language"] === "string") h.sourceLanguage = v["source-language"];
  }
  if (typeof v.instructions === "string") h.instructions = v.instructions;
  // POST /v1/bulk does not offer the lane router (docs/gpu-lane.md, "Bulk uploads and lane auto").
  if (v.lane === "auto" || typeof v.deadline === "string") {
    throw new CliError(`${v.lane === "auto" ? "--lane auto" : "--deadline"}: not available for \`sieve submit\` (bulk uploads stream; the lane router plans a request from its item count before storing anything): use --lane batch|realtime, or POST /v1/jobs with lane "auto" and a deadline`, 2);
  }
  if (typeof v.lane === "string") h.lane = v.lane;
  if (typeof v.provider === "string") h.provider = v.provider;
  if (typeof v.model === "string") h.model = v.model;
  return h;
}

async function firstLine(file: string): Promise<string> {
  const s = createReadStream(file, { start: 0, end: 64 * 1024 - 1, encoding: "utf8" });
  let buf = "";
  for await (const c of s) buf += c as string;
  return buf.split("\n")[0] ?? "";
}

async function submit(file: string, v: Record<string, string | boolean | undefined>, c: Conn, out: NodeJS.WritableStream, err: NodeJS.WriteStream): Promise<void> {
  const size = (await stat(file)).size;
  let header: string | undefined;
  const first = (await firstLine(file)).trim();
  let fileHasHeader = false;
  try {
    const parsed = JSON.parse(first) as Record<string, unknown>;
    fileHasHeader = typeof parsed === "object" && parsed !== null && "task" in parsed && !("text" in parsed);
  } catch {
    /* an item or garbage: the server reports it */
  }
  if (!fileHasHeader || typeof v.task === "string") {
    if (fileHasHeader) throw new CliError("the file starts with a header line: drop --task/--labels, or remove the header", 2);
    header = JSON.stringify(headerFromFlags(v)) + "\n";
  }
  const key = randomUUID();
  let res: { status: number; text: string } | undefined;
  for (let attempt = 1; ; attempt++) {
    const progress = new Progress(size + (header ? Buffer.byteLength(header) : 0), err, v["no-progress"] !== true);
    const body = async function* (): AsyncGenerator<Uint8Array> {
      if (header) {
        const b = Buffer.from(header);
        progress.add(b.length, 1);
        yield b;
      }
      for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
        const b = chunk as Buffer;
        let lines = 0;
        for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
        progress.add(b.length, lines);
        yield b;
      }
    };
    let why: string;
    let wait: number;
    try {
      const a = await streamPost(`${c.url}/v1/bulk`, { authorization: `Bearer ${c.key}`, "content-type": "application/x-ndjson", "idempotency-key": key }, body());
      progress.done();
      if (!RETRY_STATUSES.has(a.status) || attempt >= SUBMIT_ATTEMPTS) {
        res = a;
        break;
      }
      why = errorOf(a.status, a.text).message;
      wait = retryDelayMs(a.headers["retry-after"], attempt);
    } catch (e) {
      progress.done();
      if (!(e instanceof NetworkError) || attempt >= SUBMIT_ATTEMPTS) throw e instanceof NetworkError ? new CliError(e.message) : e;
      why = e.message;
      wait = retryDelayMs(undefined, attempt);
    }
    err.write(`retrying in ${(wait / 1000).toFixed(1)} s with the same Idempotency-Key (attempt ${attempt + 1} of ${SUBMIT_ATTEMPTS}): ${why.split("\n")[0]}\n`);
    await new Promise((r) => setTimeout(r, wait));
  }
  if (res.status < 200 || res.status >= 300) throw errorOf(res.status, res.text);
  const r = JSON.parse(res.text) as { id: string; lane: string; counts: { accepted: number; rejected: number; cached: number }; errors: Array<{ line: number; field?: string; message: string }>; notice?: string };
  err.write(`accepted ${r.counts.accepted}, rejected ${r.counts.rejected}, cached ${r.counts.cached}, lane ${r.lane}\n`);
  // The server numbers lines of the body; when the CLI sent a header line first, the file's line
  // numbers are one lower (the caller fixes its file, not our body).
  const offset = header ? 1 : 0;
  for (const e of r.errors.slice(0, 20)) err.write(`  line ${e.line - offset}: ${e.field ? `${e.field}: ` : ""}${e.message}\n`);
  if (r.counts.rejected > 20) err.write(`  ... ${r.counts.rejected - 20} more rejected line(s)\n`);
  if (r.notice) err.write(`note: ${r.notice}\n`);
  out.write(`${r.id}\n`);
}

async function getJson(c: Conn, path: string): Promise<unknown> {
  const res = await call(`${c.url}${path}`, { headers: { authorization: `Bearer ${c.key}` } });
  if (!res.ok) throw await apiError(res);
  return res.json();
}

export async function main(argv: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WriteStream; env: NodeJS.ProcessEnv } = { out: process.stdout, err: process.stderr, env: process.env }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      task: { type: "string" },
      labels: { type: "string" },
      "target-language": { type: "string" },
      "source-language": { type: "string" },
      instructions: { type: "string" },
      lane: { type: "string" },
      deadline: { type: "string" },
      provider: { type: "string" },
      model: { type: "string" },
      wait: { type: "string" },
      limit: { type: "string" },
      since: { type: "string" },
      "no-progress": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [cmd, arg] = positionals;
  if (values.help || !cmd) {
    io.err.write(`${USAGE}\n`);
    return cmd ? 0 : 2;
  }
  const need = (what: string) => {
    if (!arg) throw new CliError(`${cmd}: ${what} is required\n${USAGE}`, 2);
    return arg;
  };
  const c = conn(values, io.env);
  switch (cmd) {
    case "submit":
      await submit(need("a file"), values, c, io.out, io.err);
      return 0;
    case "status": {
      // limit=1, not 0: GET /v1/jobs/:id?limit=0 answers 500 (routes/jobs.ts nextAfter of an empty page).
      const q = new URLSearchParams({ limit: "1", ...(values.wait ? { wait: values.wait } : {}) });
      const job = (await getJson(c, `/v1/jobs/${encodeURIComponent(need("a job id"))}?${q}`)) as Record<string, unknown>;
      delete job.items;
      delete job.nextAfter;
      io.out.write(`${JSON.stringify(job, null, 2)}\n`);
      return 0;
    }
    case "results":
    case "export-fine-tune": {
      // Both stream NDJSON from the server to stdout as it arrives.
      const path =
        cmd === "results"
          ? `/v1/jobs/${encodeURIComponent(need("a job id"))}/results`
          : `/v1/exports/fine-tune?${new URLSearchParams({ ...(values.task ? { task: values.task } : {}), ...(values.since ? { since: values.since } : {}) })}`;
      const res = await call(`${c.url}${path}`, { headers: { authorization: `Bearer ${c.key}` } });
      if (!res.ok) throw await apiError(res);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (!io.out.write(chunk)) await new Promise((r) => io.out.once("drain", r));
      }
      return 0;
    }
    case "batches":
      io.out.write(`${JSON.stringify(await getJson(c, `/v1/batches?limit=${values.limit ?? "20"}`), null, 2)}\n`);
      return 0;
    case "batch":
      io.out.write(`${JSON.stringify(await getJson(c, `/v1/batches/${encodeURIComponent(need("a batch id"))}`), null, 2)}\n`);
      return 0;
    case "cancel-batch": {
      const res = await call(`${c.url}/v1/batches/${encodeURIComponent(need("a batch id"))}/cancel`, { method: "POST", headers: { authorization: `Bearer ${c.key}` } });
      if (!res.ok) throw await apiError(res);
      io.out.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown command "${cmd}"\n${USAGE}`, 2);
  }
}

// Run when executed (not when imported by tests). `sieve start` keeps running; every other command exits.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  if (process.argv[2] === "start") {
    void startLazily();
  } else {
    main(process.argv.slice(2)).then(
      (code) => process.exit(code),
      (e: unknown) => {
        const err = e instanceof CliError ? e : new CliError(e instanceof Error ? e.message : String(e));
        process.stderr.write(`sieve: ${err.message}\n`);
        process.exit(err.exitCode);
      },
    );
  }
}
