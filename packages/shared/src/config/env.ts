/**
 * Environment: one zod schema, parsed once at start-up, failing fast with a message that names the
 * variable. Parsing has no side effects (testable without mocks). README's configuration table
 * mirrors this file (scripts/env-table.py): keep them in step. What the variables MEAN per task
 * lives in ./tasks.ts (`taskSettings`), which providers they enable in ./providers.ts.
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { PROVIDERS } from "../providerNames.js";

/** "true"/"1"/"yes"/"on" -> true; "false"/"0"/"no"/"off"/"" -> false. */
export const BoolEnv = z
  .union([z.boolean(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === "boolean") return v;
    const s = v.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(s)) return true;
    if (["false", "0", "no", "off", ""].includes(s)) return false;
    ctx.addIssue({ code: "custom", message: `expected a boolean (true/false), got "${v}"` });
    return z.NEVER;
  });

const Int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
const OptStr = z
  .string()
  .optional()
  .transform((s) => (s && s.trim() !== "" ? s.trim() : undefined));

/** "provider:model", e.g. "openai:gpt-4.1-mini". */
const Route = z
  .string()
  .regex(new RegExp(`^(${PROVIDERS.join("|")}):.+$`), `expected "provider:model" with provider ${PROVIDERS.join(", ")}`)
  .optional();

export const Env = z
  .object({
    /** HTTP port of the API (producer). @defaultValue 8080 */
    PORT: Int(8080, 0, 65535),
    /** Interface the API binds to. @defaultValue "127.0.0.1" */
    HOST: z.string().default("127.0.0.1"),
    /** Redis for queues, caches and events (needs maxmemory-policy noeviction). */
    REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
    /** postgres://... When unset, an embedded PGlite database lives under SIEVE_DATA_DIR. */
    DATABASE_URL: OptStr,
    /** Postgres rolls back a session of ours idle inside a transaction this long, releasing its locks (a host cut off mid-transaction); 0 = the server's setting (e.g. behind a pooler that rejects startup parameters). @defaultValue 15000 */
    SIEVE_PG_IDLE_TX_TIMEOUT_MS: Int(15_000),
    /** Where embedded state lives (PGlite data, simulator files). @defaultValue ".sieve" */
    SIEVE_DATA_DIR: z.string().default(".sieve"),
    /** Prefix of every Redis key Sieve writes. @defaultValue "sieve" */
    SIEVE_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default("sieve"),
    /** Send ALL provider traffic to the bundled provider simulator at SIEVE_SIMULATOR_URL (`npm start -- --simulator` runs it as its own process). A test tool, never a default. */
    SIEVE_SIMULATOR: BoolEnv.default(false),
    /** Port `npm start -- --simulator` runs the simulator on (0 = any free port), and of the default SIEVE_SIMULATOR_URL. @defaultValue 4010 */
    SIEVE_SIMULATOR_PORT: Int(4010, 0, 65535),
    /** Where the provider simulator answers with SIEVE_SIMULATOR=true (`npm start -- --simulator` sets it). @defaultValue http://127.0.0.1:SIEVE_SIMULATOR_PORT */
    SIEVE_SIMULATOR_URL: OptStr,
    /** Enables the OpenAI provider. */
    OPENAI_API_KEY: OptStr,
    /** OpenAI-compatible base URL including /v1. Default: the OpenAI API. */
    OPENAI_BASE_URL: OptStr,
    /** Enables the Anthropic provider. */
    ANTHROPIC_API_KEY: OptStr,
    /** Anthropic base URL (without /v1). Default: the Anthropic API. */
    ANTHROPIC_BASE_URL: OptStr,
    /** Base URL of a vLLM OpenAI-compatible server, e.g. http://vllm:8000/v1 */
    VLLM_BASE_URL: OptStr,
    /** Sent as Bearer token to vLLM (its --api-key), if set. */
    VLLM_API_KEY: OptStr,
    /** The model name vLLM serves (see its /v1/models). */
    VLLM_MODEL: OptStr,
    /** Route for classify items: "provider:model". Default: the first configured provider's default model. */
    SIEVE_ROUTE_CLASSIFY: Route,
    /** Route for translate items: "provider:model". */
    SIEVE_ROUTE_TRANSLATE: Route,
    /** Bootstrap API keys, "tenant:key,tenant2:key2". Stored hashed at start-up. */
    SIEVE_API_KEYS: OptStr,
    /** Operator console (/admin) and Bull Board user (HTTP basic auth). Unset: both are disabled. */
    SIEVE_ADMIN_USER: OptStr,
    /** Operator console and Bull Board password (with SIEVE_ADMIN_USER). */
    SIEVE_ADMIN_PASSWORD: OptStr,
    /** Most items in one POST /v1/jobs. @defaultValue 1000 */
    SIEVE_MAX_ITEMS_PER_REQUEST: Int(1000, 1, 100_000),
    /** Longest item text, in characters. @defaultValue 8000 */
    SIEVE_MAX_TEXT_CHARS: Int(8000, 1, 1_000_000),
    /** Largest JSON body, in bytes. @defaultValue 5242880 (5 MiB) */
    SIEVE_MAX_BODY_BYTES: Int(5 * 1024 * 1024, 1024),
    /** Longest ?wait= a caller may ask for, in ms. @defaultValue 60000 */
    SIEVE_MAX_WAIT_MS: Int(60_000, 0),
    /**
     * How long an Idempotency-Key is remembered (per tenant), in hours; at least 24. Older keys are
     * purged by the sweeper and may be reused. @defaultValue 48
     */
    SIEVE_IDEMPOTENCY_TTL_HOURS: Int(48, 24, 24 * 365),
    /** Items packed into one classify call at most. @defaultValue 25 */
    SIEVE_CLASSIFY_MAX_ITEMS: Int(25, 1, 500),
    /** Estimated prompt tokens of items in one classify call at most. @defaultValue 6000 */
    SIEVE_CLASSIFY_MAX_TOKENS: Int(6000, 1),
    /** Longest a classify item waits for neighbours before its call is sent, in ms. @defaultValue 200 */
    SIEVE_CLASSIFY_MAX_WAIT_MS: Int(200, 0),
    /** Items packed into one translate call at most. @defaultValue 10 */
    SIEVE_TRANSLATE_MAX_ITEMS: Int(10, 1, 500),
    /** Estimated prompt tokens of items in one translate call at most. @defaultValue 3000 */
    SIEVE_TRANSLATE_MAX_TOKENS: Int(3000, 1),
    /** Longest a translate item waits for neighbours, in ms. @defaultValue 200 */
    SIEVE_TRANSLATE_MAX_WAIT_MS: Int(200, 0),
    /** LLM calls in flight per provider per worker process. @defaultValue 8 */
    SIEVE_WORKER_CONCURRENCY: Int(8, 1, 1000),
    /** Timeout of one LLM call, in ms. @defaultValue 60000 */
    SIEVE_CALL_TIMEOUT_MS: Int(60_000, 100),
    /**
     * BullMQ attempts of a parcel. Transient provider failures (5xx, timeouts) of realtime parcels
     * are bounded by time instead (the item's deadline or SIEVE_RETRY_WINDOW_MS; docs/gpu-lane.md,
     * "Outages"). @defaultValue 6
     */
    SIEVE_MAX_ATTEMPTS: Int(6, 1, 100),
    /** First retry delay for transient failures (exponential), in ms. @defaultValue 1000 */
    SIEVE_RETRY_BASE_MS: Int(1000, 1),
    /**
     * How long transient provider failures (5xx, timeouts) are retried for an item without a
     * deadline, in ms, at least 10 minutes; items with a deadline are retried until it. Replaces
     * the attempt count for realtime parcels (docs/gpu-lane.md, "Outages"). @defaultValue 1800000 (30 min)
     */
    SIEVE_RETRY_WINDOW_MS: Int(1_800_000, 600_000),
    /** Routes ("provider:model", comma list, in order) a down provider's items move to. Default: every configured cloud provider's default model. */
    SIEVE_FALLBACK_ROUTES: OptStr,
    /** Let items of different tenants share one prompt (off: the tenant is part of every batch key). */
    SIEVE_MIX_TENANTS: BoolEnv.default(false),
    /** JSON price table overrides: {"model": {"input": usdPerMTok, "output": ..., "cachedInput": ..., "cacheWrite": ...}} */
    SIEVE_PRICES: OptStr,
    /**
     * Cloud model whose list price the operator console compares local GPU (vLLM) calls with, to
     * show what the GPU lane saved (docs/console.md). @defaultValue gpt-4.1-mini
     */
    SIEVE_CONSOLE_GPU_REFERENCE_MODEL: z.string().min(1).default("gpt-4.1-mini"),
    /** Exact cache + in-flight coalescing on/off. @defaultValue true */
    SIEVE_CACHE_ENABLED: BoolEnv.default(true),
    /** Default time to live of cache entries, in seconds (per request: cache.ttlSeconds). @defaultValue 604800 (7 days) */
    SIEVE_CACHE_TTL_SECONDS: Int(7 * 24 * 3600, 1),
    /** Most exact-cache entries kept before eviction. @defaultValue 1000000 */
    SIEVE_CACHE_MAX_ENTRIES: Int(1_000_000, 1),
    /** Eviction policy at SIEVE_CACHE_MAX_ENTRIES: lru (least recently used) or lfu (least often used). @defaultValue "lru" */
    SIEVE_CACHE_EVICTION: z.enum(["lru", "lfu"]).default("lru"),
    /** Semantic cache backend: off, pgvector (embedded PGlite + pgvector) or qdrant. @defaultValue "pgvector" */
    SIEVE_SEMANTIC_CACHE: z.enum(["off", "pgvector", "qdrant"]).default("pgvector"),
    /**
     * Tasks that use the semantic cache unless a request says otherwise (comma list, e.g.
     * "classify"). Default none: with the embedded CPU embedder it cuts submit throughput ~50x for
     * a few % of hits at a safe threshold (README, bench:cache). @defaultValue ""
     */
    SIEVE_SEMANTIC_TASKS: z.string().default(""),
    /**
     * Cosine similarity at or above which a neighbour answers a classify item. The lowest threshold
     * with at most 1% wrong-intent hits on BANKING77 (bench:cache). @defaultValue 0.97
     */
    SIEVE_SEMANTIC_THRESHOLD_CLASSIFY: z.coerce.number().min(0).max(1).default(0.97),
    /** Same for translate: at most 1% false hits on PAWS hard negatives needs 0.998 (bench:cache). @defaultValue 0.998 */
    SIEVE_SEMANTIC_THRESHOLD_TRANSLATE: z.coerce.number().min(0).max(1).default(0.998),
    /** Guards a classify task may skip: comma list of "negation", "numbers" (default none: both guards on). */
    SIEVE_SEMANTIC_ALLOW_MISMATCH_CLASSIFY: z.string().default(""),
    /** Same for translate. */
    SIEVE_SEMANTIC_ALLOW_MISMATCH_TRANSLATE: z.string().default(""),
    /** Most semantic-cache entries kept (LRU beyond). @defaultValue 1000000 */
    SIEVE_SEMANTIC_MAX_ENTRIES: Int(1_000_000, 1),
    /** Share of semantic hits also sent to the LLM to measure the false-hit rate (0..1). @defaultValue 0.05 */
    SIEVE_SEMANTIC_AUDIT_RATE: z.coerce.number().min(0).max(1).default(0.05),
    /** Embeddings: use-lite (embedded Universal Sentence Encoder lite, CPU) or openai (any OpenAI-compatible /v1/embeddings). @defaultValue "use-lite" */
    SIEVE_EMBEDDINGS: z.enum(["use-lite", "openai"]).default("use-lite"),
    /** Base URL for SIEVE_EMBEDDINGS=openai (OpenAI, vLLM or TEI). Default: OPENAI_BASE_URL. */
    SIEVE_EMBEDDINGS_URL: OptStr,
    /** API key for SIEVE_EMBEDDINGS=openai. Default: OPENAI_API_KEY. */
    SIEVE_EMBEDDINGS_API_KEY: OptStr,
    /** Embedding model for SIEVE_EMBEDDINGS=openai. @defaultValue "text-embedding-3-small" */
    SIEVE_EMBEDDINGS_MODEL: z.string().default("text-embedding-3-small"),
    /** Qdrant URL for SIEVE_SEMANTIC_CACHE=qdrant, e.g. http://qdrant:6333 */
    QDRANT_URL: OptStr,
    /** Qdrant API key, if the server needs one. */
    QDRANT_API_KEY: OptStr,
    /** Qdrant collection of the semantic cache. @defaultValue "sieve_semantic_cache" */
    QDRANT_COLLECTION: z.string().default("sieve_semantic_cache"),
    // --- Batch lane and bulk ingestion (docs/batch-lane.md) ---
    /** Enable the provider Batch API lane (lane "batch" on /v1/jobs and /v1/bulk; packer and poller in the workers). @defaultValue false */
    SIEVE_BATCH_LANE: BoolEnv.default(false),
    /** Items packed into one classify request of a provider batch at most. @defaultValue 50 */
    SIEVE_BATCH_CLASSIFY_MAX_ITEMS: Int(50, 1, 500),
    /** Items packed into one translate request of a provider batch at most. @defaultValue 10 */
    SIEVE_BATCH_TRANSLATE_MAX_ITEMS: Int(10, 1, 500),
    /** Estimated item tokens (countTokens) in one batch request at most. @defaultValue 12000 */
    SIEVE_BATCH_MAX_REQUEST_TOKENS: Int(12_000, 1),
    /** Requests per provider batch at most, below the provider's own limit (OpenAI 50,000; Anthropic 100,000). @defaultValue 50000 */
    SIEVE_BATCH_MAX_REQUESTS: Int(50_000, 1, 100_000),
    /** Bytes of one batch input (JSONL) at most, below the provider's own limit (OpenAI 200 MB; Anthropic 256 MB). @defaultValue 200000000 */
    SIEVE_BATCH_MAX_BYTES: Int(200_000_000, 1_000),
    /** Provider batches an item may be sent in before it ends with its own error. @defaultValue 3 */
    SIEVE_BATCH_MAX_ATTEMPTS: Int(3, 1, 50),
    /** Estimated prompt tokens in open (not yet ended) batches per provider at most: admission. @defaultValue 20000000 */
    SIEVE_BATCH_MAX_ENQUEUED_TOKENS: Int(20_000_000, 1),
    /** Open (not yet ended) batches per provider at most: admission. @defaultValue 50 */
    SIEVE_BATCH_MAX_OPEN_BATCHES: Int(50, 1, 10_000),
    /** Packer tick, in ms (a submit also kicks it at once). @defaultValue 60000 */
    SIEVE_BATCH_PACK_EVERY_MS: Int(60_000, 100),
    /** Lifecycle poller tick, in ms. @defaultValue 60000 */
    SIEVE_BATCH_POLL_EVERY_MS: Int(60_000, 100),
    /** A process's exclusive lease over a batch it is submitting or settling, in ms (renewed while it works; a crashed holder's lease expires). @defaultValue 120000 */
    SIEVE_BATCH_LEASE_MS: Int(120_000, 1_000),
    /** Cron pattern of the nightly bulk run (BullMQ job scheduler): ingests SIEVE_BULK_INBOX, then packs. Unset: off. */
    SIEVE_BULK_CRON: OptStr,
    /** Time zone of SIEVE_BULK_CRON. @defaultValue "UTC" */
    SIEVE_BULK_CRON_TZ: z.string().default("UTC"),
    /** Directory whose *.jsonl files the nightly run ingests (header line with "tenant", then items); moved to done/ after. */
    SIEVE_BULK_INBOX: OptStr,
    /** Rows per multi-row INSERT while ingesting a bulk body. @defaultValue 2000 */
    SIEVE_BULK_CHUNK_ITEMS: Int(2_000, 1, 20_000),
    /** Bad lines listed in a bulk response (all are counted). @defaultValue 100 */
    SIEVE_BULK_MAX_REPORTED_ERRORS: Int(100, 0, 100_000),
    /** Longest a bulk upload may take to arrive, in ms (the HTTP server's request timeout). @defaultValue 3600000 */
    SIEVE_BULK_TIMEOUT_MS: Int(3_600_000, 1_000),
    /**
     * How often every process checks that the job schedulers it owns (sweeper, batch lane, bulk
     * inbox cron) still exist in Redis and re-creates missing ones (Redis lost its data), in ms.
     * Also checked at once after every reconnect (docs/operations.md#outages). @defaultValue 15000
     */
    SIEVE_SCHEDULE_CHECK_MS: Int(15_000, 100),
    /**
     * /readyz answers 503 when no sweeper run was seen for this long (no workers process runs the
     * recovery machinery), in ms; 0 = do not check. @defaultValue 120000
     */
    SIEVE_READY_SWEEPER_MAX_AGE_MS: Int(120_000, 0),
    /**
     * Port of a workers-only process's /metrics, /healthz and /readyz (SIEVE_ROLE=workers or gpu; the API
     * serves its own). 0 = none. @defaultValue 0
     */
    SIEVE_WORKER_METRICS_PORT: Int(0, 0, 65535),
    // --- Local GPU lane and lane router (docs/gpu-lane.md) ---
    /**
     * vLLM engines of the local GPU lane: comma list of OpenAI-compatible base URLs (data-parallel
     * replicas), each optionally `url|model` when it serves another model than VLLM_MODEL.
     * Default: VLLM_BASE_URL alone.
     */
    SIEVE_GPU_ENGINES: OptStr,
    /** How often each engine's /metrics is polled for its adaptive limiter, in ms. @defaultValue 250 */
    SIEVE_GPU_POLL_MS: Int(250, 50, 10_000),
    /** Engine gauges older than this count as stale (no growth), in ms. @defaultValue 1000 */
    SIEVE_GPU_STALE_MS: Int(1_000, 100),
    /** Most calls in flight per engine, whatever the limiter learns. @defaultValue 256 */
    SIEVE_GPU_MAX_CONCURRENCY: Int(256, 1, 10_000),
    /** vllm:num_requests_waiting above this shrinks an engine's limit. @defaultValue 5 */
    SIEVE_GPU_WAITING_HIGH: Int(5, 0),
    /** vllm:kv_cache_usage_perc above this (with requests waiting) stops an engine's limit from growing (0..1). @defaultValue 0.8 */
    SIEVE_GPU_KV_HIGH: z.coerce.number().min(0).max(1).default(0.8),
    /** Cloud route ("provider:model") GPU-lane calls fail over to when no engine is healthy. Unset: no failover. */
    SIEVE_GPU_FAILOVER_ROUTE: Route,
    /** How long no engine must be healthy before calls fail over, in ms. @defaultValue 30000 */
    SIEVE_GPU_FAILOVER_AFTER_MS: Int(30_000, 0),
    /** Model of the lane router's flex lane (OpenAI flex processing; a flex-capable model: https://platform.openai.com/docs/guides/flex-processing). Empty: no flex lane. @defaultValue "gpt-5-mini" */
    SIEVE_FLEX_MODEL: z.string().default("gpt-5-mini"),
    /** Shortest deadline the lane router sends to flex, in ms (flex is slower and may be refused). @defaultValue 900000 (15 min) */
    SIEVE_ROUTER_FLEX_MIN_MS: Int(900_000, 0),
    /** Typical time to an answer on the realtime lane, in ms: a shorter deadline is refused (422). @defaultValue 5000 */
    SIEVE_ROUTER_REALTIME_MS: Int(5_000, 0),
    /** Longest local GPU backlog the router builds with items that have a half-price alternative, in ms of GPU work. @defaultValue 2000 */
    SIEVE_ROUTER_LOCAL_FILL_MS: Int(2_000, 0),
    /** Provider queues this worker process consumes (comma list of openai, anthropic, vllm). Default: every configured one; SIEVE_ROLE=gpu: vllm. */
    SIEVE_WORKER_LANES: OptStr,
    // --- Answer quality (docs/quality.md) ---
    /** Simulator reference mode: JSONL file of known answers ({"text","label"} / {"text","targetLanguage","translation"}) that `npm start -- --simulator` hands to the simulator (its --answers). */
    SIEVE_SIMULATOR_ANSWERS: OptStr,
    /** Noise of reference answers, e.g. "base:0.97,perItem:0.002,position:0.03,min:0.5,seed:7" (unset parts: these defaults; the simulator's --noise). @defaultValue "" */
    SIEVE_SIMULATOR_NOISE: z.string().default(""),
    /** Share of items answered in multi-item calls that are asked again alone to measure agreement (0..1; e.g. 0.02). Each re-check is a billed single-item call. @defaultValue 0 (off) */
    SIEVE_RECHECK_RATE: z.coerce.number().min(0).max(1).default(0),
    /** Agreement (0..1) under which a batch key's maxItems is lowered. @defaultValue 0.9 */
    SIEVE_RECHECK_FLOOR: z.coerce.number().min(0).max(1).default(0.9),
    /** Agreement (0..1) at or above which a lowered maxItems is raised again (hysteresis: above the floor). @defaultValue 0.97 */
    SIEVE_RECHECK_RECOVER: z.coerce.number().min(0).max(1).default(0.97),
    /** Re-checks at one maxItems needed before the controller acts on them. @defaultValue 40 */
    SIEVE_RECHECK_MIN_SAMPLES: Int(40, 1, 1_000_000),
    /** Shortest time between two maxItems changes of one batch key, in ms. @defaultValue 60000 */
    SIEVE_RECHECK_COOLDOWN_MS: Int(60_000, 0),
    /** Learned classification cache available (requests opt in with cache.learned: true). @defaultValue false */
    SIEVE_LEARNED_CACHE: BoolEnv.default(false),
    /** Error bound of the learned cache per label set (0..1): it answers only above the confidence that keeps its measured error under this. @defaultValue 0.01 */
    SIEVE_LEARNED_MAX_ERROR: z.coerce.number().gt(0).lt(1).default(0.01),
    /** LLM-labelled examples a label set needs before the learned cache answers anything. @defaultValue 300 */
    SIEVE_LEARNED_MIN_EXAMPLES: Int(300, 10),
    /** Share of learned-cache answers also sent to the LLM (audit; live error rate). @defaultValue 0.05 */
    SIEVE_LEARNED_AUDIT_RATE: z.coerce.number().min(0).max(1).default(0.05),
    /** Learned cache adjudication: a confident (at or above this) disagreement with a packed LLM label is asked alone before it counts as the model's error (docs/quality.md). Unset: off. @defaultValue off */
    SIEVE_LEARNED_ADJUDICATE_ABOVE: z.coerce.number().gt(0).max(1).optional(),
    /** The learned cache's threshold scan starts where this many times the points a zero-error sample needs lie above the candidate (docs/quality.md measured 4 better with adjudication). @defaultValue 1 */
    SIEVE_LEARNED_START_FACTOR: z.coerce.number().min(1).max(100).default(1),
    /** Run API, workers, the GPU lane only (gpu), or API + workers (all) in this process. @defaultValue "all" */
    SIEVE_ROLE: z.enum(["all", "api", "workers", "gpu"]).default("all"),
    /** pino log level. @defaultValue "info" */
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .superRefine((e, ctx) => {
    if (!e.DATABASE_URL && e.SIEVE_ROLE !== "all") {
      ctx.addIssue({
        code: "custom",
        path: ["DATABASE_URL"],
        message: "the embedded database (PGlite) lives in one process: set DATABASE_URL to run SIEVE_ROLE=api or workers separately",
      });
    }
    if (e.VLLM_BASE_URL && !e.VLLM_MODEL) {
      ctx.addIssue({ code: "custom", path: ["VLLM_MODEL"], message: "VLLM_MODEL is required when VLLM_BASE_URL is set" });
    }
    if (e.SIEVE_SEMANTIC_CACHE === "qdrant" && !e.QDRANT_URL) {
      ctx.addIssue({ code: "custom", path: ["QDRANT_URL"], message: "QDRANT_URL is required when SIEVE_SEMANTIC_CACHE=qdrant" });
    }
    if (e.SIEVE_RECHECK_RECOVER < e.SIEVE_RECHECK_FLOOR) {
      ctx.addIssue({ code: "custom", path: ["SIEVE_RECHECK_RECOVER"], message: "must be at least SIEVE_RECHECK_FLOOR (hysteresis)" });
    }
    if (e.SIEVE_BULK_CRON && !e.SIEVE_BULK_INBOX) {
      ctx.addIssue({ code: "custom", path: ["SIEVE_BULK_INBOX"], message: "SIEVE_BULK_INBOX (a directory) is required when SIEVE_BULK_CRON is set" });
    }
    if ((e.SIEVE_ADMIN_USER && !e.SIEVE_ADMIN_PASSWORD) || (!e.SIEVE_ADMIN_USER && e.SIEVE_ADMIN_PASSWORD)) {
      ctx.addIssue({ code: "custom", path: ["SIEVE_ADMIN_PASSWORD"], message: "set both SIEVE_ADMIN_USER and SIEVE_ADMIN_PASSWORD, or neither" });
    }
  });
export type Env = z.infer<typeof Env>;

export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  const r = Env.safeParse(source);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return r.data;
}
