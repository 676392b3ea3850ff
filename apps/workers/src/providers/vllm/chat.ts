/**
 * vLLM reuses the OpenAI transforms: `response_format: { type: "json_schema" }` is vLLM's
 * structured-outputs entry point on the OpenAI-compatible server. The old `guided_json` extra
 * field was removed in vLLM v0.12.0 and must not be sent.
 *
 * vLLM grammar backends have ignored minItems/maxItems in the past: the count and ids are
 * validated downstream (validateResults), never trusted.
 */
export { buildChatRequest as buildVllmChatRequest, parseChatResponse as parseVllmChatResponse } from "../openai/chat.js";
