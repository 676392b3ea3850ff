/**
 * The first line of a bulk body: the task parameters and the request options (`BulkHeader`; an
 * inbox file's `InboxHeader` also names its tenant; packages/shared/src/api/schemas.ts). It is
 * read and checked before any item: a bad header refuses the whole body with nothing stored.
 */
import { BulkHeader, InboxHeader, fieldPath, findUnstorable, taskParamsOf, type TaskParams } from "@sieve/shared";
import { tenantExists } from "@sieve/shared/db/ops/batchIngest";
import type { ApiContext } from "../context.js";
import { RejectedInput } from "../errors.js";
import type { Line } from "./lines.js";

export interface BodyHeader {
  /** Its line number (blank lines before it are skipped). */
  line: number;
  tenantId: string;
  params: TaskParams;
  /** The request options: lane, provider, model, cache. */
  options: Pick<BulkHeader, "lane" | "provider" | "model" | "cache">;
}

/**
 * Reads lines up to the header and checks it. `callerTenant`: the API key's tenant; absent for an
 * inbox file, whose header must name a known tenant. Returns the header and the bytes read.
 */
export async function readHeader(ctx: ApiContext, lines: AsyncIterator<Line>, callerTenant: string | undefined): Promise<{ header: BodyHeader; bytes: number }> {
  let headerLine: Line | undefined;
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
  if (!headerLine) throw new RejectedInput("body: empty; expected a header line, then one item per line", [{ line: 1, field: "header", message: "missing" }]);
  const no = headerLine.no;
  let rawHeader: unknown;
  try {
    rawHeader = JSON.parse(headerLine.text);
  } catch {
    throw headerError(no, "header: not valid JSON");
  }
  refuseAutoLane(rawHeader, no);
  const unstorable = findUnstorable(rawHeader);
  if (unstorable) throw new RejectedInput(`header (line ${no}): ${unstorable.field}: ${unstorable.message}`, [{ line: no, ...unstorable }]);
  const parsed = callerTenant ? BulkHeader.safeParse(rawHeader) : InboxHeader.safeParse(rawHeader);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      line: no,
      field: i.code === "unrecognized_keys" ? i.keys.map((k) => fieldPath([...i.path, k])).join(",") : fieldPath(i.path),
      message: i.code === "unrecognized_keys" ? "unknown field" : i.message,
    }));
    const first = issues[0]!;
    throw new RejectedInput(`header (line ${first.line}): ${first.field}: ${first.message}`, issues.slice(0, 20));
  }
  const h = parsed.data;
  const tenantId: string = callerTenant ?? (h as { tenant?: string }).tenant ?? "";
  if (!callerTenant && !(await tenantExists(ctx.db, tenantId))) {
    throw new RejectedInput(`header (line ${no}): tenant: "${tenantId}" is not a known tenant`, [{ line: no, field: "tenant", message: "unknown tenant" }]);
  }
  return { header: { line: no, tenantId, params: taskParamsOf(h), options: { lane: h.lane, provider: h.provider, model: h.model, cache: h.cache } }, bytes };
}

function headerError(line: number, message: string): RejectedInput {
  return new RejectedInput(`${message} (line ${line}); the first line must be a JSON object with the task parameters`, [{ line, field: "header", message }]);
}

/**
 * `lane: "auto"` (and its `deadline`) is not offered for bulk bodies (docs/gpu-lane.md, "Bulk
 * uploads and lane auto"): the router plans a request's lanes from its item count before anything
 * is stored, and refuses an unmeetable deadline with nothing written; a bulk body is stored and
 * queued as it streams, its count known only at its last line.
 */
function refuseAutoLane(rawHeader: unknown, line: number): void {
  if (typeof rawHeader !== "object" || rawHeader === null) return;
  const h = rawHeader as { lane?: unknown; deadline?: unknown };
  const why = 'is not available for bulk uploads (the lane router plans a request from its item count before storing anything; a bulk body streams); use "batch" or "realtime", or POST /v1/jobs with lane "auto"';
  if (h.lane === "auto") {
    throw new RejectedInput(`header (line ${line}): lane: "auto" ${why}`, [{ line, field: "lane", message: '"auto" is not available for bulk uploads' }]);
  }
  if (h.deadline !== undefined) {
    throw new RejectedInput(`header (line ${line}): deadline: only with lane "auto", which ${why}`, [{ line, field: "deadline", message: "not available for bulk uploads" }]);
  }
}
