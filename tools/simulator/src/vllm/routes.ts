/**
 * vLLM's OpenAI-compatible server under `/vllm`: the OpenAI chat transform with vLLM's rules
 * (one served model, `structured_outputs`, no `guided_*`), plus /health, /v1/models, /metrics.
 */
import { header, isRecord, sendJson, sendText, SimError } from "../http.js";
import { chatCompletionsHandler, outputFromResponseFormat, requireBearer, type ChatFlavor, type OutputSpec } from "../openai/chat.js";
import type { Route, RouteContext } from "../types.js";
import { EngineCrashed } from "./batching.js";

/** Version reported by `GET /vllm/version`: the simulated server follows vLLM >= 0.12 rules. */
export const VLLM_VERSION = "0.12.0";

/** vLLM's `structured_outputs` field: `json` (schema object or string) and `choice` are simulated. */
function outputFromStructuredOutputs(so: unknown): OutputSpec {
  if (!isRecord(so)) throw new SimError("invalid_request", "structured_outputs must be an object", { param: "structured_outputs" });
  if (so.json !== undefined) {
    let schema: unknown = so.json;
    if (typeof schema === "string") {
      try {
        schema = JSON.parse(schema);
      } catch {
        throw new SimError("invalid_request", "structured_outputs.json is not valid JSON", { param: "structured_outputs.json" });
      }
    }
    if (!isRecord(schema)) throw new SimError("invalid_request", "structured_outputs.json must be a JSON schema object", { param: "structured_outputs.json" });
    return { kind: "schema", schema };
  }
  if (Array.isArray(so.choice) && so.choice.every((c) => typeof c === "string")) return { kind: "choice", choices: so.choice as string[] };
  throw new SimError(
    "invalid_request",
    `structured_outputs: only 'json' and 'choice' are simulated (got ${Object.keys(so).join(", ") || "nothing"})`,
    { param: "structured_outputs" },
  );
}

export const vllmChatFlavor: ChatFlavor = {
  provider: "vllm",
  dialect: "vllm",
  // vLLM automatic prefix caching hashes whole KV blocks (16 tokens by default) and has no minimum.
  cache: { minTokens: 0, roundTo: 16 },
  authorize(ctx) {
    const key = ctx.state.vllm.apiKey;
    if (key !== undefined) requireBearer(ctx, key);
  },
  model(body, ctx) {
    const served = ctx.state.vllm.model;
    if (body.model === undefined || body.model === null) return served;
    if (body.model !== served) {
      throw new SimError("not_found", `The model \`${String(body.model)}\` does not exist.`, { param: "model", code: "model_not_found" });
    }
    return served;
  },
  output(body, ctx) {
    const legacy = Object.keys(body).filter((k) => k.startsWith("guided_"));
    if (legacy.length > 0) {
      if (ctx.state.vllm.legacyGuided === "reject") {
        throw new SimError(
          "invalid_request",
          `${legacy.join(", ")}: the guided_* request fields were removed in vLLM v0.12.0; use ` +
            `"structured_outputs": {"json": <schema>} or response_format json_schema. (Real vLLM ignores them ` +
            `silently and answers unconstrained; the Sieve simulator rejects them so the mistake is visible.)`,
          { param: legacy[0] },
        );
      }
      if (body.structured_outputs === undefined && body.response_format === undefined) return { kind: "plain" };
    }
    if (body.structured_outputs !== undefined && body.structured_outputs !== null) return outputFromStructuredOutputs(body.structured_outputs);
    return outputFromResponseFormat(body.response_format);
  },
  run: (ctx, tokens, maxTokens, _body, fn) => ctx.state.vllm.run(ctx.signal, tokens, maxTokens, fn),
  record: (ctx, r) => ctx.state.vllm.record(r),
  // As with `--enable-prompt-tokens-details`.
  promptDetails: (cached) => ({ cached_tokens: cached }),
};

function authorizeIfKeyed(ctx: RouteContext): void {
  const key = ctx.state.vllm.apiKey;
  if (key !== undefined && header(ctx.req, "authorization") !== `Bearer ${key}`) requireBearer(ctx, key);
}

/**
 * The engine's lifecycle in front of every /vllm route: a crashed server resets connections
 * (the process is gone), a hung one never answers, a loading one answers 503 (`/health` is how vLLM says "not ready";
 * https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html). A crash in the middle
 * of a request cuts its connection.
 */
function gated(route: Route): Route {
  return {
    ...route,
    async handler(ctx) {
      const state = ctx.state.vllm.state;
      if (state === "down") {
        ctx.res.destroy();
        return;
      }
      if (state === "loading") {
        sendText(ctx.res, 503, "", "text/plain");
        return;
      }
      if (state === "hung") {
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        return;
      }
      try {
        await route.handler(ctx);
      } catch (e) {
        if (e instanceof EngineCrashed) {
          ctx.res.destroy();
          return;
        }
        throw e;
      }
    },
  };
}

export const vllmRoutes: Route[] = ([
  { method: "POST", path: "/vllm/v1/chat/completions", dialect: "vllm", handler: chatCompletionsHandler(vllmChatFlavor) },
  {
    method: "GET",
    path: "/vllm/v1/models",
    dialect: "vllm",
    handler(ctx) {
      authorizeIfKeyed(ctx);
      const id = ctx.state.vllm.model;
      sendJson(ctx.res, 200, {
        object: "list",
        data: [{ id, object: "model", created: 1_700_000_000, owned_by: "vllm", root: id, parent: null, max_model_len: 32_768 }],
      });
    },
  },
  { method: "GET", path: "/vllm/health", dialect: "vllm", handler: (ctx) => sendText(ctx.res, 200, "", "text/plain") },
  { method: "GET", path: "/vllm/version", dialect: "vllm", handler: (ctx) => sendJson(ctx.res, 200, { version: VLLM_VERSION }) },
  {
    method: "GET",
    path: "/vllm/metrics",
    dialect: "vllm",
    handler: (ctx) => sendText(ctx.res, 200, ctx.state.vllm.metrics(), "text/plain; version=0.0.4; charset=utf-8"),
  },
] as Route[]).map(gated);
