/**
 * The provider-independent part of a generation request: request-level faults (latency,
 * timeout, 429, 5xx), the answer with item faults, and token-limit cuts. Provider adapters
 * (openai/chat.ts, anthropic/messages.ts) wrap the result in their wire shapes.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { decode, encode } from "gpt-tokenizer/encoding/o200k_base";
import type { JsonSchema } from "@sieve/shared/tasks/output";
import { generateAnswer, inferSchemaFromPrompt, PLAIN_TEXT_ANSWER } from "./answer.js";
import { applyItemFaults, POISON_MARKER, truncateText, type FaultPlan } from "./faults.js";
import { SimError, type Dialect } from "./http.js";
import type { RouteContext } from "./types.js";

/**
 * Waits the planned latency, then fails the request as planned. Resolves false when the client
 * went away (nothing must be written then); throws a SimError for 429 / 5xx.
 */
export async function injectRequestFaults(ctx: RouteContext, plan: FaultPlan, dialect: Dialect): Promise<boolean> {
  const { stats } = ctx.state;
  if (plan.latencyMs > 0) {
    try {
      await sleep(plan.latencyMs, undefined, { signal: ctx.signal });
    } catch {
      return false;
    }
  }
  if (ctx.signal.aborted) return false;
  const fault = plan.request;
  if (!fault) return true;
  switch (fault.kind) {
    case "timeout":
      stats.injected("timeouts");
      // Never answer: hold the connection until the client aborts (or the server closes).
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      return false;
    case "rate_limited":
      stats.injected("rateLimited");
      throw new SimError(
        "rate_limited",
        dialect === "anthropic"
          ? "Number of request tokens has exceeded your per-minute rate limit (simulated by the Sieve simulator)."
          : "Rate limit reached for requests (simulated by the Sieve simulator). Please try again later.",
        { code: "rate_limit_exceeded", headers: { "retry-after": String(fault.retryAfterS) } },
      );
    case "server":
      stats.injected("serverErrors");
      if (dialect === "anthropic") throw new SimError("overloaded", "Overloaded (simulated by the Sieve simulator)");
      throw new SimError(
        "server",
        "The server had an error while processing your request (simulated by the Sieve simulator).",
      );
  }
}

export interface AnswerText {
  /** What the "model" wrote (JSON, possibly cut; or plain text). */
  text: string;
  /** The parsed answer when `text` is complete JSON; undefined when cut or plain text. */
  value: unknown;
  /** Cut by the truncation fault or by the request's max tokens. */
  truncated: boolean;
}

/**
 * The answer to one request after item faults and the truncation fault. `schema` undefined:
 * Sieve's results schema inferred from the system prompt, else a plain-text answer.
 */
export function produceAnswer(
  ctx: RouteContext,
  plan: FaultPlan,
  input: { schema: JsonSchema | undefined; system: string; user: string },
): AnswerText {
  const { stats } = ctx.state;
  const schema = input.schema ?? inferSchemaFromPrompt(input.system);
  if (!schema) return { text: PLAIN_TEXT_ANSWER, value: undefined, truncated: false };
  const gen = generateAnswer({ schema, system: input.system, user: input.user, reference: ctx.state.reference });
  stats.items(gen.items.length);
  const poison = new Set(gen.items.filter((i) => i.text.includes(POISON_MARKER)).map((i) => i.id));
  const applied = applyItemFaults(gen.value, gen.entries, poison, plan);
  stats.injected("poisonedItems", applied.poisoned);
  stats.injected("droppedItems", applied.dropped);
  stats.injected("duplicatedItems", applied.duplicated);
  stats.injected("badValues", applied.badValues);
  const text = JSON.stringify(applied.value);
  if (plan.truncate) {
    stats.injected("truncated");
    return { text: truncateText(text), value: undefined, truncated: true };
  }
  return { text, value: applied.value, truncated: false };
}

/** Cuts `answer` to at most `maxTokens` tokens, as a model stopping at its token limit would. */
export function limitTokens(ctx: RouteContext, answer: AnswerText, maxTokens: number | undefined): AnswerText {
  if (maxTokens === undefined) return answer;
  const tokens = encode(answer.text);
  if (tokens.length <= maxTokens) return answer;
  ctx.state.stats.maxTokensCut();
  return { text: decode(tokens.slice(0, maxTokens)), value: undefined, truncated: true };
}

/** Text of an OpenAI/Anthropic content field: a string, or the text of its text parts/blocks. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => {
      if (typeof p === "string") return p;
      const part = p as { type?: unknown; text?: unknown; content?: unknown; input?: unknown };
      if (typeof part.text === "string") return part.text;
      if (part.type === "tool_use") return JSON.stringify(part.input ?? {});
      if (part.type === "tool_result") return contentText(part.content);
      return "";
    })
    .join("");
}

/** An optional positive integer field (max_tokens and friends); 400 when it is something else. */
export function optionalPositiveInt(body: Record<string, unknown>, field: string): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new SimError("invalid_request", `${field}: must be a positive integer`, { param: field });
  }
  return v;
}

export function newId(prefix: string): string {
  return prefix + randomUUID().replace(/-/g, "").slice(0, 24);
}
