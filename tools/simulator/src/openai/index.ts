/** OpenAI routes: chat completions and models. Files and Batches routes go in this table too. */
import { header, sendJson, SimError } from "../http.js";
import type { Route } from "../types.js";
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
  run: (_ctx, _tokens, fn) => fn(),
  promptDetails: (cached) => ({ cached_tokens: cached, audio_tokens: 0 }),
};

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
