/**
 * @sieve/simulator: a local stand-in for the OpenAI, Anthropic and vLLM APIs with fault
 * injection. A TEST TOOL (every response carries `x-sieve-simulator: 1`), never a provider.
 */
export { startSimulator, BUILTIN_ROUTES, VllmControl, type Simulator, type StartSimulatorOptions } from "./server.js";
export { SimulatorFaults, POISON_MARKER, createRng, planFaults, applyItemFaults, truncateText, type FaultPlan, type Rng } from "./faults.js";
export type { SimulatorStats, TokenCounters, InjectedCounters, SimProvider } from "./stats.js";
export {
  generateAnswer,
  parseItems,
  labelFor,
  translationFor,
  targetLanguageOf,
  inferSchemaFromPrompt,
  PLAIN_TEXT_ANSWER,
  type AnswerInput,
  type GeneratedAnswer,
  type SimItem,
} from "./answer.js";
export { normalizeText } from "./text.js";
export { ReferenceAnswers, ReferenceNoise, DEFAULT_REFERENCE_NOISE, parseNoiseSpec } from "./reference.js";
export { injectRequestFaults, produceAnswer, limitTokens, newId, type AnswerText } from "./generation.js";
export { SimError, sendJson, sendError, readBody, readJsonObject, type Dialect } from "./http.js";
export { PromptCache } from "./promptCache.js";
export { DEFAULT_VLLM_MODEL, type VllmOptions, type EngineState } from "./vllm/engine.js";
export { BatchScheduler, PERF_DEFAULTS, type PerfModel } from "./vllm/batching.js";
export { openaiChatFlavor } from "./openai/index.js";
export { chatCompletionsHandler, type ChatFlavor } from "./openai/chat.js";
export type { Route, RouteContext, SimState, SimulatorLogger } from "./types.js";
export {
  batchRoutes,
  batchSnapshot,
  BatchKnobs,
  BATCH_DEFAULTS,
  ANTHROPIC_CUSTOM_ID,
  CHAT_ENDPOINT,
  type BatchStats,
  type ProviderBatchStats,
  type OpenAIBatchStatus,
  type AnthropicProcessingStatus,
  type BatchErrorData,
} from "./batch/index.js";
