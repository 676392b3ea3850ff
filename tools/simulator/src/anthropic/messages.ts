/**
 * Anthropic `POST /v1/messages` (non-streaming). Structured output arrives as one forced tool
 * (answered with a `tool_use` block), as `output_config.format` json_schema, or as a prefilled
 * assistant turn (answered with text). Prompt caching follows `cache_control` breakpoints.
 */
import { countTokens } from "@sieve/shared/tokens";
import type { JsonSchema } from "@sieve/shared/tasks/output";
import { planFaults } from "../faults.js";
import { contentText, injectRequestFaults, limitTokens, newId, produceAnswer, type AnswerText } from "../generation.js";
import { header, isRecord, readJsonObject, sendJson, SimError } from "../http.js";
import { DEFAULT_CACHE_TTL_MS, ONE_HOUR_TTL_MS, type CacheSegment } from "../promptCache.js";
import type { RouteContext } from "../types.js";

/** Anthropic's minimum cacheable prompt (Sonnet/Opus: 1024 tokens; Haiku models need more). */
export const ANTHROPIC_MIN_CACHE_TOKENS = 1024;
/** Most `cache_control` breakpoints one request may carry. */
export const MAX_CACHE_BREAKPOINTS = 4;

type Block = Record<string, unknown>;

function ttlOf(block: unknown): number | undefined {
  if (!isRecord(block) || !isRecord(block.cache_control)) return undefined;
  return block.cache_control.ttl === "1h" ? ONE_HOUR_TTL_MS : DEFAULT_CACHE_TTL_MS;
}

function blocksOf(content: unknown, field: string): Block[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (Array.isArray(content) && content.every(isRecord)) return content;
  throw new SimError("invalid_request", `${field}: Input should be a valid string or list of content blocks`);
}

/**
 * The prompt as cacheable segments in Anthropic's prefix order: tools, system, messages. Token
 * counts: o200k tokens of each tool's JSON and each block's text, plus 4 per system/message turn
 * and 3 per request (the same overheads as countChatTokens).
 */
export function promptSegments(body: Record<string, unknown>): CacheSegment[] {
  const segs: CacheSegment[] = [{ text: "", tokens: 3 }];
  // `key` identifies the segment for the cache (role included); tokens count `text` only.
  const push = (key: string, text: string, extra: number, block: unknown) => {
    const ttlMs = ttlOf(block);
    segs.push({ text: key, tokens: countTokens(text) + extra, ...(ttlMs !== undefined ? { ttlMs } : {}) });
  };
  for (const tool of (body.tools as unknown[] | undefined) ?? []) {
    const { cache_control: _cc, ...rest } = tool as Block;
    const json = JSON.stringify(rest);
    push(`tool\n${json}`, json, 0, tool);
  }
  if (body.system !== undefined) {
    blocksOf(body.system, "system").forEach((b, i) => {
      const text = contentText([b]);
      push(`system\n${text}`, text, i === 0 ? 4 : 0, b);
    });
  }
  (body.messages as Block[]).forEach((m, mi) => {
    blocksOf(m.content, `messages.${mi}.content`).forEach((b, i) => {
      const text = contentText([b]);
      push(`${i === 0 ? String(m.role) : "+"}\n${text}`, text, i === 0 ? 4 : 0, b);
    });
  });
  return segs;
}

function validate(body: Record<string, unknown>): { model: string; maxTokens: number } {
  if (body.stream === true) throw new SimError("invalid_request", "stream: true is not supported by the Sieve simulator (non-streaming only).");
  if (typeof body.model !== "string" || body.model.length === 0) throw new SimError("invalid_request", "model: Field required");
  const mt = body.max_tokens;
  if (typeof mt !== "number" || !Number.isInteger(mt) || mt < 1) throw new SimError("invalid_request", "max_tokens: Field required (a positive integer)");
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new SimError("invalid_request", "messages: at least one message is required");
  messages.forEach((m, i) => {
    if (!isRecord(m) || (m.role !== "user" && m.role !== "assistant")) {
      throw new SimError("invalid_request", `messages.${i}.role: Input should be 'user' or 'assistant'`);
    }
  });
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw new SimError("invalid_request", "tools: Input should be a valid list");
    body.tools.forEach((t, i) => {
      if (!isRecord(t) || typeof t.name !== "string") throw new SimError("invalid_request", `tools.${i}.name: Field required`);
      if (!isRecord(t.input_schema)) throw new SimError("invalid_request", `tools.${i}.input_schema: Field required`);
    });
  }
  const blocks = [
    ...((body.tools as unknown[] | undefined) ?? []),
    ...(Array.isArray(body.system) ? body.system : []),
    ...messages.flatMap((m) => (Array.isArray(m.content) ? (m.content as unknown[]) : [])),
  ];
  const breakpoints = blocks.filter((b) => ttlOf(b) !== undefined).length;
  if (breakpoints > MAX_CACHE_BREAKPOINTS) {
    throw new SimError("invalid_request", `A maximum of ${MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found ${breakpoints}.`);
  }
  return { model: body.model, maxTokens: mt };
}

/** The tool the model must call, when tools are given and tool_choice is not "none". */
function forcedTool(body: Record<string, unknown>): { name: string; schema: JsonSchema } | undefined {
  const tools = (body.tools as Block[] | undefined) ?? [];
  const choice = isRecord(body.tool_choice) ? body.tool_choice : { type: "auto" };
  if (tools.length === 0 || choice.type === "none") return undefined;
  if (choice.type === "tool") {
    const tool = tools.find((t) => t.name === choice.name);
    if (!tool) throw new SimError("invalid_request", `tool_choice.name: tool '${String(choice.name)}' is not in tools`);
    return { name: tool.name as string, schema: tool.input_schema as JsonSchema };
  }
  // "any" / "auto": the simulated model always calls the first tool.
  const first = tools[0]!;
  return { name: first.name as string, schema: first.input_schema as JsonSchema };
}

/** `output_config.format` (or the older `output_format`) json_schema: structured output as text. */
function outputFormatSchema(body: Record<string, unknown>): JsonSchema | undefined {
  const fmt = isRecord(body.output_config) ? body.output_config.format : body.output_format;
  return isRecord(fmt) && fmt.type === "json_schema" && isRecord(fmt.schema) ? fmt.schema : undefined;
}

/**
 * A key in `x-api-key`, or (as @anthropic-ai/sdk >= 1.x sends it) in `Authorization: Bearer`.
 */
export function requireAnthropicKey(ctx: RouteContext): void {
  const bearer = /^Bearer\s+\S/i.test(header(ctx.req, "authorization") ?? "");
  if (!header(ctx.req, "x-api-key") && !bearer) {
    throw new SimError("authentication", "x-api-key header is required (or Authorization: Bearer <key>)");
  }
}

function requireAnthropicHeaders(ctx: RouteContext): void {
  requireAnthropicKey(ctx);
  if (!header(ctx.req, "anthropic-version")) throw new SimError("invalid_request", "anthropic-version: header is required");
}

export async function messagesHandler(ctx: RouteContext): Promise<void> {
  requireAnthropicHeaders(ctx);
  const body = await readJsonObject(ctx.req);
  const { model, maxTokens } = validate(body);
  const tool = forcedTool(body);
  const segments = promptSegments(body);
  const messages = body.messages as Block[];
  const system = body.system === undefined ? "" : blocksOf(body.system, "system").map((b) => contentText([b])).join("\n");
  const user = contentText([...messages].reverse().find((m) => m.role === "user")?.content);
  const last = messages[messages.length - 1]!;
  const prefill = last.role === "assistant" ? contentText(last.content) : "";

  const plan = planFaults(ctx.state.faults, ctx.state.rng);
  if (!(await injectRequestFaults(ctx, plan, "anthropic"))) return;

  const cache = ctx.state.caches.anthropic.match(model, segments, { minTokens: ANTHROPIC_MIN_CACHE_TOKENS });
  const schema = tool?.schema ?? outputFormatSchema(body);
  let answer: AnswerText = limitTokens(ctx, produceAnswer(ctx, plan, { schema, system, user }), maxTokens);
  // A prefilled assistant turn ("{") is continued, not repeated.
  if (prefill && answer.text.startsWith(prefill)) answer = { ...answer, text: answer.text.slice(prefill.length) };

  const content =
    tool && !answer.truncated
      ? [{ type: "tool_use", id: newId("toolu_"), name: tool.name, input: answer.value }]
      : [{ type: "text", text: answer.text }];
  const stopReason = answer.truncated ? "max_tokens" : tool ? "tool_use" : "end_turn";
  const outputTokens = countTokens(answer.text);
  const inputTokens = cache.totalTokens - cache.readTokens - cache.writeTokens;
  ctx.state.stats.tokens("anthropic", {
    prompt: cache.totalTokens,
    completion: outputTokens,
    cached: cache.readTokens,
    cacheCreation: cache.writeTokens,
  });
  sendJson(ctx.res, 200, {
    id: newId("msg_"),
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: {
      input_tokens: inputTokens,
      output_tokens: outputTokens,
      cache_creation_input_tokens: cache.writeTokens,
      cache_read_input_tokens: cache.readTokens,
      cache_creation: {
        ephemeral_5m_input_tokens: cache.writeTokensByTtl.get(DEFAULT_CACHE_TTL_MS) ?? 0,
        ephemeral_1h_input_tokens: cache.writeTokensByTtl.get(ONE_HOUR_TTL_MS) ?? 0,
      },
      server_tool_use: null,
      service_tier: "standard",
    },
  });
}
