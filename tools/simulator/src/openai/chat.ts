/**
 * `POST /v1/chat/completions` (non-streaming), shared by OpenAI and the OpenAI-compatible vLLM
 * server: a `ChatFlavor` supplies what differs (auth, how the schema is carried, caching rules,
 * error dialect, scheduling).
 */
import { countChatTokens, countTokens } from "@sieve/shared/tokens";
import type { JsonSchema } from "@sieve/shared/tasks/output";
import { planFaults } from "../faults.js";
import { contentText, injectRequestFaults, limitTokens, newId, optionalPositiveInt, produceAnswer } from "../generation.js";
import { header, isRecord, readJsonObject, sendJson, SimError } from "../http.js";
import { DEFAULT_CACHE_TTL_MS, type CacheMatchOptions } from "../promptCache.js";
import type { RouteContext } from "../types.js";

/** A finished answer waiting to be sent. */
export interface ChatReply {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  finish: "stop" | "length";
  /** performance.now() of the first token, when the flavor models it. */
  firstTokenAt?: number;
  send(): void;
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** What a request asks the "model" to produce. */
export type OutputSpec =
  | { kind: "schema"; schema: JsonSchema }
  /** json_object or no response_format: Sieve's schema inferred from the prompt, else plain text. */
  | { kind: "infer" }
  /** vLLM `structured_outputs: { choice }`. */
  | { kind: "choice"; choices: string[] }
  /** Output a real model would write without constraints (e.g. vLLM ignoring `guided_*`). */
  | { kind: "plain" };

export interface ChatFlavor {
  provider: "openai" | "vllm";
  dialect: "openai" | "vllm";
  /** OpenAI: >= 1024 tokens in 128-token steps. vLLM: whole 16-token blocks. */
  cache: CacheMatchOptions;
  /** Throws a 401 SimError when the request is not authorised. */
  authorize(ctx: RouteContext): void;
  /** The model name to answer with; throws (e.g. vLLM 404) when the model is not served. */
  model(body: Record<string, unknown>, ctx: RouteContext): string;
  /** How the request carries its structured-output schema; throws a 400 for unsupported fields. */
  output(body: Record<string, unknown>, ctx: RouteContext): OutputSpec;
  /**
   * Wraps the answering phase (vLLM: a scheduler slot, then the GPU time of the answer; OpenAI
   * flex: a slower queue). `fn` writes nothing: it returns the reply, sent after `run`
   * resolves. Resolves undefined when aborted.
   */
  run<T extends ChatReply>(ctx: RouteContext, promptTokens: number, maxTokens: number | undefined, body: Record<string, unknown>, fn: () => Promise<T | undefined>): Promise<T | undefined>;
  /** Called after each answered request (vLLM: metrics). */
  record?(ctx: RouteContext, r: { promptTokens: number; cachedTokens: number; completionTokens: number; finish: "stop" | "length"; ttftS: number }): void;
  /** `usage.prompt_tokens_details` for this flavor. */
  promptDetails(cachedTokens: number): unknown;
}

/** OpenAI's `Authorization: Bearer <key>` check, in its error wording. */
export function requireBearer(ctx: RouteContext, expected?: string): void {
  const auth = header(ctx.req, "authorization") ?? "";
  const m = /^Bearer\s+(\S.*)$/i.exec(auth);
  if (!m) {
    throw new SimError(
      "authentication",
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    );
  }
  if (expected !== undefined && m[1] !== expected) {
    throw new SimError("authentication", "Incorrect API key provided.", { code: "invalid_api_key" });
  }
}

/** `response_format` as OpenAI defines it: text, json_object, or json_schema with a schema. */
export function outputFromResponseFormat(rf: unknown): OutputSpec {
  if (rf === undefined || rf === null) return { kind: "infer" };
  if (!isRecord(rf)) throw new SimError("invalid_request", "response_format must be an object", { param: "response_format" });
  switch (rf.type) {
    case "text":
    case "json_object":
      return { kind: "infer" };
    case "json_schema": {
      const js = rf.json_schema;
      if (!isRecord(js) || typeof js.name !== "string" || !isRecord(js.schema)) {
        throw new SimError("invalid_request", "Missing required parameter: 'response_format.json_schema' with 'name' and 'schema'.", {
          param: "response_format.json_schema",
          code: "missing_required_parameter",
        });
      }
      return { kind: "schema", schema: js.schema };
    }
    default:
      throw new SimError("invalid_request", `Invalid value for 'response_format.type': ${JSON.stringify(rf.type)}.`, {
        param: "response_format.type",
        code: "invalid_value",
      });
  }
}

/** Validates and flattens `messages` (string or text-part content) into role + text. */
export function chatMessages(body: Record<string, unknown>): ChatMessage[] {
  const raw = body.messages;
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new SimError("invalid_request", "Missing required parameter: 'messages'.", { param: "messages", code: "missing_required_parameter" });
  }
  return raw.map((m, i) => {
    if (!isRecord(m) || typeof m.role !== "string") {
      throw new SimError("invalid_request", `Invalid 'messages[${i}]': expected an object with a role.`, { param: `messages[${i}]` });
    }
    return { role: m.role, content: contentText(m.content) };
  });
}

function systemAndUser(messages: readonly ChatMessage[]): { system: string; user: string } {
  const system = messages.filter((m) => m.role === "system" || m.role === "developer").map((m) => m.content).join("\n");
  const user = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  return { system, user };
}

/**
 * The tier a response reports: the one the request asked for ("auto" is served as "default";
 * https://platform.openai.com/docs/api-reference/chat/object#chat/object-service_tier).
 */
export function serviceTierOf(body: Record<string, unknown>): string {
  const t = body.service_tier;
  if (t === "flex") return "flex";
  if (t === "priority" || t === "fast") return "priority";
  return "default";
}

export function chatCompletionsHandler(flavor: ChatFlavor): (ctx: RouteContext) => Promise<void> {
  return async (ctx) => {
    const arrived = performance.now();
    flavor.authorize(ctx);
    const body = await readJsonObject(ctx.req);
    if (body.stream === true) {
      throw new SimError("invalid_request", "stream: true is not supported by the Sieve simulator (non-streaming only).", { param: "stream" });
    }
    if (body.n !== undefined && body.n !== null && body.n !== 1) {
      throw new SimError("invalid_request", "n > 1 is not supported by the Sieve simulator.", { param: "n" });
    }
    const model = flavor.model(body, ctx);
    const messages = chatMessages(body);
    const output = flavor.output(body, ctx);
    const maxTokens = optionalPositiveInt(body, "max_completion_tokens") ?? optionalPositiveInt(body, "max_tokens");
    const promptTokens = countChatTokens(messages);
    const plan = planFaults(ctx.state.faults, ctx.state.rng);

    const reply = await flavor.run(ctx, promptTokens, maxTokens, body, async (): Promise<ChatReply | undefined> => {
      if (!(await injectRequestFaults(ctx, plan, flavor.dialect))) return undefined;
      const { system, user } = systemAndUser(messages);
      const cached = ctx.state.caches[flavor.provider].match(
        model,
        messages.map((m) => ({ text: `${m.role}\n${m.content}`, tokens: 4 + countTokens(m.content), ttlMs: DEFAULT_CACHE_TTL_MS })),
        flavor.cache,
      ).readTokens;
      const answer = limitTokens(
        ctx,
        output.kind === "choice"
          ? { text: output.choices[0] ?? "", value: undefined, truncated: false }
          : output.kind === "plain"
            ? { text: "Sure! Here is my answer: " + user.slice(0, 200), value: undefined, truncated: false }
            : produceAnswer(ctx, plan, { schema: output.kind === "schema" ? output.schema : undefined, system, user }),
        maxTokens,
      );
      const completionTokens = countTokens(answer.text);
      const finish = answer.truncated ? "length" : "stop";
      ctx.state.stats.tokens(flavor.provider, { prompt: promptTokens, completion: completionTokens, cached });
      const tier = serviceTierOf(body);
      return {
        promptTokens,
        cachedTokens: cached,
        completionTokens,
        finish,
        send: () =>
          sendJson(
            ctx.res,
            200,
            {
              id: newId("chatcmpl-"),
              object: "chat.completion",
              created: Math.floor(Date.now() / 1000),
              model,
              choices: [
                {
                  index: 0,
                  message: { role: "assistant", content: answer.text, refusal: null, annotations: [] },
                  logprobs: null,
                  finish_reason: finish,
                },
              ],
              usage: {
                prompt_tokens: promptTokens,
                completion_tokens: completionTokens,
                total_tokens: promptTokens + completionTokens,
                prompt_tokens_details: flavor.promptDetails(cached),
                completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
              },
              service_tier: tier,
              system_fingerprint: "fp_sieve_simulator",
            },
            { "openai-processing-ms": String(Math.round(performance.now() - arrived)) },
          ),
      };
    });
    if (!reply || ctx.signal.aborted) return;
    flavor.record?.(ctx, {
      promptTokens: reply.promptTokens,
      cachedTokens: reply.cachedTokens,
      completionTokens: reply.completionTokens,
      finish: reply.finish,
      ttftS: ((reply.firstTokenAt ?? performance.now()) - arrived) / 1000,
    });
    reply.send();
  };
}
