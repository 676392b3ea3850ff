/**
 * TEST STAND-IN — NOT QDRANT. An in-memory HTTP server that answers the Qdrant REST endpoints
 * Sieve's QdrantStore uses, with request and response shapes taken from Qdrant's OpenAPI spec
 * (the types shipped in @qdrant/js-client-rest 1.18: `{ result, status: "ok", time }` on success,
 * `{ status: { error }, time }` on failure), so the real client can be exercised on a machine where
 * no Qdrant server can run. Search is an exact cosine (or dot) scan over float32 vectors; there
 * is no HNSW, no persistence, no sharding, no auth. Its latency says nothing about Qdrant's.
 *
 * Endpoints: GET / (version), GET /healthz, GET /collections, GET|PUT|DELETE /collections/{name},
 * GET /collections/{name}/exists, PUT /collections/{name}/index, PUT /collections/{name}/points,
 * POST /collections/{name}/points/{query,query/batch,scroll,count,delete,payload}.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { UnsupportedError, WrongInputError, matchesFilter, normaliseId, type Payload, type PointId } from "./filter.js";

/** The Qdrant version the stand-in reports (the client warns when major/minor differ by > 1). */
export const STANDIN_QDRANT_VERSION = "1.18.0";

type Distance = "Cosine" | "Dot";

interface Point {
  id: PointId;
  vector: Float32Array;
  payload: Payload;
  version: number;
}

interface Collection {
  size: number;
  distance: Distance;
  points: Map<PointId, Point>;
  payloadSchema: Record<string, { data_type: string; params?: unknown }>;
}

class NotFoundError extends Error {}

export interface QdrantStandinOptions {
  /** @defaultValue 0 (any free port) */
  port?: number;
  /** @defaultValue "127.0.0.1" */
  host?: string;
  /** Largest request body, in bytes. @defaultValue 512 MiB */
  maxBodyBytes?: number;
}

export interface QdrantStandin {
  /** e.g. "http://127.0.0.1:41234" */
  url: string;
  port: number;
  /** Points stored per collection (for tests). */
  pointCount(collection: string): number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export async function startQdrantStandin(opts: QdrantStandinOptions = {}): Promise<QdrantStandin> {
  const collections = new Map<string, Collection>();
  let operationId = 0;
  const maxBody = opts.maxBodyBytes ?? 512 * 1024 * 1024;

  const getCollection = (name: string): Collection => {
    const c = collections.get(name);
    if (!c) throw new NotFoundError(`Not found: Collection \`${name}\` doesn't exist!`);
    return c;
  };
  const updateResult = () => ({ operation_id: ++operationId, status: "completed" });

  const routes: Array<{ method: string; re: RegExp; handle: (m: string[], body: unknown) => unknown }> = [
    {
      method: "GET",
      re: /^\/collections$/,
      handle: () => ({ collections: [...collections.keys()].map((name) => ({ name })) }),
    },
    {
      method: "GET",
      re: /^\/collections\/([^/]+)\/exists$/,
      handle: ([name]) => ({ exists: collections.has(name!) }),
    },
    {
      method: "PUT",
      re: /^\/collections\/([^/]+)$/,
      handle: ([name], body) => {
        if (collections.has(name!)) throw new ConflictError(`Wrong input: Collection \`${name}\` already exists!`);
        const vectors = (body as { vectors?: unknown } | undefined)?.vectors as { size?: unknown; distance?: unknown } | undefined;
        if (!vectors || typeof vectors.size !== "number") throw new UnsupportedError("collections without a single unnamed vector config");
        if (!Number.isInteger(vectors.size) || vectors.size < 1) throw new WrongInputError("vectors.size must be a positive integer");
        if (vectors.distance !== "Cosine" && vectors.distance !== "Dot") throw new UnsupportedError(`distance ${String(vectors.distance)}`);
        collections.set(name!, { size: vectors.size, distance: vectors.distance, points: new Map(), payloadSchema: {} });
        return true;
      },
    },
    {
      method: "GET",
      re: /^\/collections\/([^/]+)$/,
      handle: ([name]) => {
        const c = getCollection(name!);
        const counts: Record<string, number> = {};
        for (const key of Object.keys(c.payloadSchema)) counts[key] = [...c.points.values()].filter((p) => key in p.payload).length;
        return {
          status: "green",
          optimizer_status: "ok",
          indexed_vectors_count: 0,
          points_count: c.points.size,
          segments_count: 1,
          config: {
            params: { vectors: { size: c.size, distance: c.distance }, shard_number: 1, replication_factor: 1, write_consistency_factor: 1, on_disk_payload: true },
            hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
            optimizer_config: {
              deleted_threshold: 0.2,
              vacuum_min_vector_number: 1000,
              default_segment_number: 0,
              max_segment_size: null,
              memmap_threshold: null,
              indexing_threshold: 20000,
              flush_interval_sec: 5,
              max_optimization_threads: null,
            },
            wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
            quantization_config: null,
          },
          payload_schema: Object.fromEntries(Object.entries(c.payloadSchema).map(([k, v]) => [k, { ...v, points: counts[k] ?? 0 }])),
        };
      },
    },
    {
      method: "DELETE",
      re: /^\/collections\/([^/]+)$/,
      handle: ([name]) => collections.delete(name!),
    },
    {
      method: "PUT",
      re: /^\/collections\/([^/]+)\/index$/,
      handle: ([name], body) => {
        const c = getCollection(name!);
        const b = body as { field_name?: unknown; field_schema?: unknown };
        if (typeof b.field_name !== "string" || b.field_name === "") throw new WrongInputError("field_name is required");
        const schema = b.field_schema;
        if (typeof schema === "string") c.payloadSchema[b.field_name] = { data_type: schema };
        else if (schema && typeof schema === "object" && typeof (schema as { type?: unknown }).type === "string") {
          c.payloadSchema[b.field_name] = { data_type: (schema as { type: string }).type, params: schema };
        } else throw new WrongInputError("field_schema is required");
        return updateResult();
      },
    },
    {
      method: "PUT",
      re: /^\/collections\/([^/]+)\/points$/,
      handle: ([name], body) => {
        const c = getCollection(name!);
        const b = (body ?? {}) as { points?: unknown; batch?: unknown; update_filter?: unknown; update_mode?: unknown };
        if (b.update_filter || b.update_mode) throw new UnsupportedError("update_filter / update_mode");
        const incoming: Array<{ id: unknown; vector: unknown; payload: unknown }> = [];
        if (Array.isArray(b.points)) incoming.push(...(b.points as Array<{ id: unknown; vector: unknown; payload: unknown }>));
        else if (b.batch && typeof b.batch === "object") {
          const batch = b.batch as { ids?: unknown[]; vectors?: unknown[]; payloads?: unknown[] };
          (batch.ids ?? []).forEach((id, i) => incoming.push({ id, vector: batch.vectors?.[i], payload: batch.payloads?.[i] }));
        } else throw new WrongInputError("expected `points` or `batch`");
        // Validate everything first: Qdrant applies an operation whole or not at all.
        const prepared = incoming.map((p) => ({
          id: normaliseId(p.id),
          vector: prepareVector(p.vector, c),
          payload: p.payload && typeof p.payload === "object" && !Array.isArray(p.payload) ? structuredClone(p.payload as Payload) : {},
        }));
        const op = ++operationId;
        for (const p of prepared) c.points.set(p.id, { ...p, version: op });
        return { operation_id: op, status: "completed" };
      },
    },
    {
      method: "POST",
      re: /^\/collections\/([^/]+)\/points\/query$/,
      handle: ([name], body) => query(getCollection(name!), body),
    },
    {
      method: "POST",
      re: /^\/collections\/([^/]+)\/points\/query\/batch$/,
      handle: ([name], body) => {
        const c = getCollection(name!);
        const searches = (body as { searches?: unknown } | undefined)?.searches;
        if (!Array.isArray(searches)) throw new WrongInputError("searches must be an array");
        return searches.map((s) => query(c, s));
      },
    },
    {
      method: "POST",
      re: /^\/collections\/([^/]+)\/points\/scroll$/,
      handle: ([name], body) => scroll(getCollection(name!), body),
    },
    {
      method: "POST",
      re: /^\/collections\/([^/]+)\/points\/count$/,
      handle: ([name], body) => {
        const c = getCollection(name!);
        const filter = (body as { filter?: unknown } | undefined)?.filter;
        let count = 0;
        for (const p of c.points.values()) if (matchesFilter(filter, p.id, p.payload)) count++;
        return { count };
      },
    },
    {
      method: "POST",
      re: /^\/collections\/([^/]+)\/points\/delete$/,
      handle: ([name], body) => {
        const c = getCollection(name!);
        const b = (body ?? {}) as { points?: unknown; filter?: unknown };
        if (Array.isArray(b.points)) for (const id of b.points) c.points.delete(normaliseId(id));
        else if (b.filter) {
          for (const p of [...c.points.values()]) if (matchesFilter(b.filter, p.id, p.payload)) c.points.delete(p.id);
        } else throw new WrongInputError("expected `points` or `filter`");
        return updateResult();
      },
    },
    {
      method: "POST",
      re: /^\/collections\/([^/]+)\/points\/payload$/,
      handle: ([name], body) => {
        const c = getCollection(name!);
        const b = (body ?? {}) as { payload?: unknown; points?: unknown; filter?: unknown; key?: unknown };
        if (b.key !== undefined && b.key !== null) throw new UnsupportedError("set_payload with `key`");
        if (!b.payload || typeof b.payload !== "object" || Array.isArray(b.payload)) throw new WrongInputError("payload must be an object");
        const payload = b.payload as Payload;
        let targets: Point[];
        if (Array.isArray(b.points)) {
          targets = b.points.map((raw) => {
            const id = normaliseId(raw);
            const p = c.points.get(id);
            if (!p) throw new NotFoundError(`Not found: No point with id ${id} found`);
            return p;
          });
        } else if (b.filter) targets = [...c.points.values()].filter((p) => matchesFilter(b.filter, p.id, p.payload));
        else throw new WrongInputError("expected `points` or `filter`");
        const op = ++operationId;
        for (const p of targets) {
          Object.assign(p.payload, structuredClone(payload));
          p.version = op;
        }
        return { operation_id: op, status: "completed" };
      },
    },
  ];

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= maxBody) chunks.push(c);
    });
    req.on("end", () => {
      try {
        const url = new URL(req.url ?? "/", "http://standin");
        const path = url.pathname.replace(/\/+$/, "") || "/";
        if (req.method === "GET" && path === "/") {
          // Qdrant's root answers VersionInfo unwrapped (no `result`).
          send(200, { title: "qdrant - vector search engine (Sieve TEST STAND-IN, not Qdrant)", version: STANDIN_QDRANT_VERSION, commit: null });
          return;
        }
        if (req.method === "GET" && (path === "/healthz" || path === "/readyz" || path === "/livez")) {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end("healthz check passed");
          return;
        }
        if (size > maxBody) throw new WrongInputError(`request body over ${maxBody} bytes`);
        const raw = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = raw.length > 0 ? JSON.parse(raw) : undefined;
        } catch {
          throw new WrongInputError("request body is not valid JSON");
        }
        for (const route of routes) {
          if (route.method !== req.method) continue;
          const m = route.re.exec(path);
          if (!m) continue;
          const result = route.handle(m.slice(1).map(decodeURIComponent), body);
          send(200, { result, status: "ok", time: elapsed() });
          return;
        }
        send(404, { status: { error: `Not found: ${req.method} ${path} (the Qdrant stand-in implements only what Sieve uses)` }, time: elapsed() });
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        const status = e instanceof NotFoundError ? 404 : e instanceof ConflictError ? 409 : e instanceof UnsupportedError ? 501 : e instanceof WrongInputError ? 400 : 500;
        send(status, { status: { error: err.message }, time: elapsed() });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    pointCount: (name) => collections.get(name)?.points.size ?? 0,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

class ConflictError extends Error {}

/** Qdrant normalises vectors of Cosine collections on upsert and stores float32. */
function prepareVector(raw: unknown, c: Collection): Float32Array {
  if (!Array.isArray(raw) || raw.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw new UnsupportedError("vectors other than a plain array of numbers (named, sparse or multi-vectors)");
  }
  const v = raw as number[];
  if (v.length !== c.size) throw new WrongInputError(`Vector dimension error: expected dim: ${c.size}, got ${v.length}`);
  const out = Float32Array.from(v);
  if (c.distance === "Cosine") {
    let sum = 0;
    for (const x of out) sum += x * x;
    const norm = Math.sqrt(sum);
    if (norm > 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! / norm;
  }
  return out;
}

function score(q: Float32Array, v: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < q.length; i++) dot += q[i]! * v[i]!;
  return Math.fround(dot);
}

function compareIds(a: PointId, b: PointId): number {
  // Qdrant orders integer ids before UUIDs.
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function selectPayload(payload: Payload, withPayload: unknown, dflt: boolean): Payload | null {
  const w = withPayload === undefined || withPayload === null ? dflt : withPayload;
  if (w === true) return structuredClone(payload);
  if (w === false) return null;
  const include = Array.isArray(w) ? w : (w as { include?: unknown }).include;
  const exclude = (w as { exclude?: unknown }).exclude;
  if (Array.isArray(include)) return Object.fromEntries(Object.entries(payload).filter(([k]) => include.includes(k))) as Payload;
  if (Array.isArray(exclude)) return Object.fromEntries(Object.entries(payload).filter(([k]) => !exclude.includes(k))) as Payload;
  throw new WrongInputError("invalid with_payload");
}

function query(c: Collection, body: unknown): { points: unknown[] } {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of ["prefetch", "using", "lookup_from", "shard_key"]) {
    if (b[k] !== undefined && b[k] !== null) throw new UnsupportedError(`query.${k}`);
  }
  let vector: unknown = b.query;
  if (vector && typeof vector === "object" && !Array.isArray(vector) && "nearest" in vector) vector = (vector as { nearest: unknown }).nearest;
  if (!Array.isArray(vector)) throw new UnsupportedError("queries other than a nearest-vector query");
  const q = prepareVector(vector, c);
  const limit = typeof b.limit === "number" ? b.limit : 10;
  const offset = typeof b.offset === "number" ? b.offset : 0;
  const threshold = typeof b.score_threshold === "number" ? b.score_threshold : undefined;
  const scored: Array<{ p: Point; s: number }> = [];
  for (const p of c.points.values()) {
    if (!matchesFilter(b.filter, p.id, p.payload)) continue;
    const s = score(q, p.vector);
    // Larger is better for Cosine and Dot; the threshold is inclusive here.
    if (threshold !== undefined && s < threshold) continue;
    scored.push({ p, s });
  }
  scored.sort((x, y) => y.s - x.s || compareIds(x.p.id, y.p.id));
  return {
    points: scored.slice(offset, offset + limit).map(({ p, s }) => ({
      id: p.id,
      version: p.version,
      score: s,
      payload: selectPayload(p.payload, b.with_payload, false),
      vector: b.with_vector === true ? Array.from(p.vector) : null,
    })),
  };
}

function scroll(c: Collection, body: unknown): { points: unknown[]; next_page_offset: PointId | null } {
  const b = (body ?? {}) as Record<string, unknown>;
  const limit = typeof b.limit === "number" ? b.limit : 10;
  const matching = [...c.points.values()].filter((p) => matchesFilter(b.filter, p.id, p.payload));
  const record = (p: Point, orderValue?: number) => ({
    id: p.id,
    payload: selectPayload(p.payload, b.with_payload, true),
    vector: b.with_vector === true ? Array.from(p.vector) : null,
    ...(orderValue === undefined ? {} : { order_value: orderValue }),
  });
  if (b.order_by !== undefined && b.order_by !== null) {
    if (b.offset !== undefined && b.offset !== null) throw new WrongInputError("Cannot use an `offset` when using `order_by`");
    const ob = typeof b.order_by === "string" ? { key: b.order_by } : (b.order_by as { key?: unknown; direction?: unknown; start_from?: unknown });
    if (typeof ob.key !== "string") throw new WrongInputError("order_by.key is required");
    const key = ob.key;
    if (!(key in c.payloadSchema)) throw new WrongInputError(`No range index for \`order_by\` key: \`${key}\`. Please create one to use \`order_by\``);
    const desc = ob.direction === "desc";
    const start = typeof ob.start_from === "number" ? ob.start_from : undefined;
    const withValue = matching
      .map((p) => ({ p, v: p.payload[key] }))
      .filter((x): x is { p: Point; v: number } => typeof x.v === "number")
      .filter((x) => start === undefined || (desc ? x.v <= start : x.v >= start));
    withValue.sort((x, y) => (desc ? y.v - x.v : x.v - y.v) || compareIds(x.p.id, y.p.id));
    return { points: withValue.slice(0, limit).map((x) => record(x.p, x.v)), next_page_offset: null };
  }
  matching.sort((x, y) => compareIds(x.id, y.id));
  const from = b.offset === undefined || b.offset === null ? undefined : normaliseId(b.offset);
  const startIdx = from === undefined ? 0 : matching.findIndex((p) => compareIds(p.id, from) >= 0);
  const page = startIdx < 0 ? [] : matching.slice(startIdx, startIdx + limit + 1);
  const next = page.length > limit ? page[limit]!.id : null;
  return { points: page.slice(0, limit).map((p) => record(p)), next_page_offset: next };
}
