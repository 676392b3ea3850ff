/**
 * OpenAI Files API: `POST /v1/files` (multipart upload), `GET /v1/files`, `GET /v1/files/:id`,
 * `GET /v1/files/:id/content`, `DELETE /v1/files/:id`. Batch output and error files are stored
 * here too (purpose "batch_output").
 */
import { header, readBody, sendJson, SimError } from "../http.js";
import { requireBearer } from "../openai/chat.js";
import type { Route, RouteContext } from "../types.js";
import { newBatchId, seconds } from "./common.js";
import type { SimFile } from "./records.js";
import { batchStateOf, type BatchState } from "./state.js";

/** Purposes `POST /v1/files` accepts. */
const PURPOSES = new Set(["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]);
/** OpenAI: "Individual files can be up to 512 MB". */
export const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

/** The wire shape of a file object. */
export function fileObject(f: SimFile): Record<string, unknown> {
  return {
    id: f.id,
    object: "file",
    bytes: f.bytes,
    created_at: f.createdAt,
    filename: f.filename,
    purpose: f.purpose,
    status: "processed",
    status_details: null,
    // Batch files expire after 30 days unless told otherwise (files.create docs).
    expires_at: f.purpose.startsWith("batch") ? f.createdAt + 30 * 24 * 3600 : null,
  };
}

/** Stores a file and returns it. */
export function storeFile(bs: BatchState, f: { filename: string; purpose: string; content: Buffer }): SimFile {
  const file: SimFile = { id: newBatchId("file-"), filename: f.filename, purpose: f.purpose, bytes: f.content.length, createdAt: seconds(bs.now()), content: f.content };
  bs.files.set(file.id, file);
  return file;
}

export function getFile(bs: BatchState, id: string): SimFile {
  const f = bs.files.get(id);
  if (!f) throw new SimError("not_found", `No such File object: ${id}`, { param: "id" });
  return f;
}

async function upload(ctx: RouteContext): Promise<void> {
  requireBearer(ctx);
  const bs = batchStateOf(ctx.state);
  const contentType = header(ctx.req, "content-type") ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    throw new SimError("invalid_request", "Expected a multipart/form-data body with 'file' and 'purpose'.", { param: "file" });
  }
  const raw = await readBody(ctx.req, MAX_UPLOAD_BYTES);
  let form: FormData;
  try {
    // Node's fetch implementation (undici) parses multipart bodies: no dependency needed.
    form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw new SimError("invalid_request", "Could not parse the multipart/form-data body.", { param: "file" });
  }
  const purpose = form.get("purpose");
  if (typeof purpose !== "string" || !PURPOSES.has(purpose)) {
    throw new SimError("invalid_request", `Invalid value for 'purpose': ${JSON.stringify(purpose)}.`, { param: "purpose", code: "invalid_value" });
  }
  const file = form.get("file");
  if (file === null || typeof file === "string") {
    throw new SimError("invalid_request", "Missing required parameter: 'file'.", { param: "file", code: "missing_required_parameter" });
  }
  if (purpose === "batch" && !file.name.endsWith(".jsonl")) {
    throw new SimError("invalid_request", "Invalid file format for Batch API. Must be .jsonl", { param: "file" });
  }
  const stored = storeFile(bs, { filename: file.name, purpose, content: Buffer.from(await file.arrayBuffer()) });
  bs.stats.filesUploaded++;
  sendJson(ctx.res, 200, fileObject(stored));
}

const fileId = (ctx: RouteContext) => decodeURIComponent(ctx.params.id ?? "");

export const fileRoutes: Route[] = [
  { method: "POST", path: "/v1/files", dialect: "openai", handler: upload },
  {
    method: "GET",
    path: "/v1/files",
    dialect: "openai",
    handler(ctx) {
      requireBearer(ctx);
      const bs = batchStateOf(ctx.state);
      const purpose = ctx.url.searchParams.get("purpose");
      const asc = ctx.url.searchParams.get("order") === "asc";
      let all = [...bs.files.values()].filter((f) => purpose === null || f.purpose === purpose);
      if (!asc) all = all.reverse();
      const after = ctx.url.searchParams.get("after");
      const start = after === null ? 0 : all.findIndex((f) => f.id === after) + 1;
      const limit = Math.min(10_000, Number(ctx.url.searchParams.get("limit") ?? 10_000) || 10_000);
      const page = all.slice(start, start + limit);
      sendJson(ctx.res, 200, {
        object: "list",
        data: page.map(fileObject),
        first_id: page[0]?.id ?? null,
        last_id: page[page.length - 1]?.id ?? null,
        has_more: start + limit < all.length,
      });
    },
  },
  {
    method: "GET",
    path: /^\/v1\/files\/(?<id>[^/]+)$/,
    name: "GET /v1/files/:id",
    dialect: "openai",
    handler(ctx) {
      requireBearer(ctx);
      sendJson(ctx.res, 200, fileObject(getFile(batchStateOf(ctx.state), fileId(ctx))));
    },
  },
  {
    method: "GET",
    path: /^\/v1\/files\/(?<id>[^/]+)\/content$/,
    name: "GET /v1/files/:id/content",
    dialect: "openai",
    handler(ctx) {
      requireBearer(ctx);
      const f = getFile(batchStateOf(ctx.state), fileId(ctx));
      ctx.res.writeHead(200, { "content-type": "application/octet-stream", "content-length": f.content.length });
      ctx.res.end(f.content);
    },
  },
  {
    method: "DELETE",
    path: /^\/v1\/files\/(?<id>[^/]+)$/,
    name: "DELETE /v1/files/:id",
    dialect: "openai",
    handler(ctx) {
      requireBearer(ctx);
      const bs = batchStateOf(ctx.state);
      const f = getFile(bs, fileId(ctx));
      bs.files.delete(f.id);
      sendJson(ctx.res, 200, { id: f.id, object: "file", deleted: true });
    },
  },
];
