/** OpenAI routes: chat completions and models. Files and Batches routes go in this table too. */
import { header, sendJson, SimError } from "../http.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Route, RouteContext } from "../types.js";
import { chatCompletionsHandler, outputFromResponseFormat, requireBearer, type ChatFlavor } from "./chat.js";

/** Models listed by `GET /v1/models` (any model name is accepted by chat completions). */
export const OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4.1", "gpt-5-mini", "gpt-5-nano"];

export const openaiChatFlavor: ChatFlavor = {
  provider: "openai",
  dialect: "openai",
  // OpenAI: prompts >= 1024 tokens, cache hits in 128-token increments (platform docs, "Prompt caching").
  cache: { minTokens: 1024, roundTo: 128 },
  authorize: (ctx) => requireBearer(ctx),
  model(body) {
    if (typeof body.model !== "string" || body.model.length === 0) {
      throw new SimError("invalid_request", "Missing required parameter: 'model'.", { param: "model", code: "missing_required_parameter" });
    }
    return body.model;
  },
  output: (body) => outputFromResponseFormat(body.response_format),
  run: (ctx, _tokens, _maxTokens, body, fn) => (body.service_tier === "flex" ? runFlex(ctx, fn) : fn()),
  promptDetails: (cached) => ({ cached_tokens: cached, audio_tokens: 0 }),
};

/**
 * Flex processing (https://platform.openai.com/docs/guides/flex-processing): slower, and now and
 * then refused with a 429 when flex capacity is short. The docs name the error "429 Resource
 * Unavailable" without a published error code; the simulator sends code `resource_unavailable`
 * (Sieve keys on the status and the tier it asked for, never on the code).
 */
async function runFlex<T>(ctx: RouteContext, fn: () => Promise<T>): Promise<T | undefined> {
  const f = ctx.state.faults;
  if (ctx.state.rng() < (f.flexRate429 ?? 0)) {
    ctx.state.stats.injected("rateLimited");
    throw new SimError("rate_limited", "Resource unavailable: flex processing capacity is temporarily exhausted (simulated by the Sieve simulator). Retry later or use the default tier.", {
      code: "resource_unavailable",
    });
  }
  if ((f.flexLatencyMs ?? 0) > 0) {
    try {
      await sleep(f.flexLatencyMs!, undefined, { signal: ctx.signal });
    } catch {
      return undefined;
    }
  }
  return fn();
}

const modelObject = (id: string) => ({ id, object: "model", created: 1_700_000_000, owned_by: "sieve-simulator" });

/** OpenAI and Anthropic share GET /v1/models; the Anthropic SDK always sends anthropic-version. */
const notAnthropic = (req: Parameters<NonNullable<Route["when"]>>[0]) => header(req, "anthropic-version") === undefined;

export const openaiRoutes: Route[] = [
  {
    method: "POST",
    path: "/v1/chat/completions",
    dialect: "openai",
    handler: chatCompletionsHandler(openaiChatFlavor),
  },
  {
    method: "GET",
    path: "/v1/models",
    dialect: "openai",
    when: notAnthropic,
    handler(ctx) {
      requireBearer(ctx);
      sendJson(ctx.res, 200, { object: "list", data: OPENAI_MODELS.map(modelObject) });
    },
  },
  {
    method: "GET",
    path: /^\/v1\/models\/(?<model>[^/]+)$/,
    name: "GET /v1/models/:model",
    dialect: "openai",
    when: notAnthropic,
    handler(ctx) {
      requireBearer(ctx);
      const id = decodeURIComponent(ctx.params.model ?? "");
      if (!OPENAI_MODELS.includes(id)) {
        throw new SimError("not_found", `The model '${id}' does not exist`, { code: "model_not_found", param: "model" });
      }
      sendJson(ctx.res, 200, modelObject(id));
    },
  },
];
