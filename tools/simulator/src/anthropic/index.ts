/** Anthropic routes: messages and models. Message Batches routes go in this table too. */
import { header, sendJson } from "../http.js";
import type { Route } from "../types.js";
import { messagesHandler, requireAnthropicKey } from "./messages.js";

/** Models listed by `GET /v1/models` (any model name is accepted by messages). */
export const ANTHROPIC_MODELS = ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"];

/** The Anthropic SDK always sends anthropic-version; the OpenAI SDK never does. */
const isAnthropic = (req: Parameters<NonNullable<Route["when"]>>[0]) => header(req, "anthropic-version") !== undefined;

export const anthropicRoutes: Route[] = [
  { method: "POST", path: "/v1/messages", dialect: "anthropic", handler: messagesHandler },
  {
    method: "GET",
    path: "/v1/models",
    name: "GET /v1/models (anthropic)",
    dialect: "anthropic",
    when: isAnthropic,
    handler(ctx) {
      requireAnthropicKey(ctx);
      const data = ANTHROPIC_MODELS.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" }));
      sendJson(ctx.res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null });
    },
  },
];
