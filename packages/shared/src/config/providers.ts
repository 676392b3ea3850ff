/**
 * Which providers a process can call and where: endpoints from the environment (or the simulator,
 * labelled as such), each provider's default model, and a task's default route.
 */
import { ConfigError } from "../errors.js";
import type { ProviderName } from "../providerNames.js";
import type { TaskName } from "../tasks/params.js";
import type { Env } from "./env.js";
import { taskSettings } from "./tasks.js";

export interface ProviderEndpoint {
  provider: ProviderName;
  baseURL: string | undefined;
  apiKey: string;
  /** Model used when a route names only the provider. */
  defaultModel: string;
  /** True when this endpoint is the bundled simulator. */
  simulated: boolean;
}

export const DEFAULT_MODELS: Record<Exclude<ProviderName, "vllm">, string> = {
  openai: "gpt-4.1-mini",
  anthropic: "claude-haiku-4-5",
};

/** Where the provider simulator answers when SIEVE_SIMULATOR=true. */
export function simulatorUrlOf(env: Env): string {
  return (env.SIEVE_SIMULATOR_URL ?? `http://127.0.0.1:${env.SIEVE_SIMULATOR_PORT}`).replace(/\/+$/, "");
}

/**
 * Which providers are usable. With SIEVE_SIMULATOR=true every provider points at the simulator
 * (at `simulatorUrl`, by default SIEVE_SIMULATOR_URL) and is marked `simulated`. With nothing
 * configured this throws a ConfigError that says what to set: Sieve never silently pretends.
 */
export function providerEndpoints(env: Env, simulatorUrl: string = simulatorUrlOf(env)): Map<ProviderName, ProviderEndpoint> {
  const out = new Map<ProviderName, ProviderEndpoint>();
  if (env.SIEVE_SIMULATOR) {
    out.set("openai", { provider: "openai", baseURL: `${simulatorUrl}/v1`, apiKey: "sk-simulator", defaultModel: DEFAULT_MODELS.openai, simulated: true });
    out.set("anthropic", { provider: "anthropic", baseURL: simulatorUrl, apiKey: "sk-ant-simulator", defaultModel: DEFAULT_MODELS.anthropic, simulated: true });
    out.set("vllm", { provider: "vllm", baseURL: `${simulatorUrl}/vllm/v1`, apiKey: "EMPTY", defaultModel: env.VLLM_MODEL ?? "Qwen/Qwen2.5-7B-Instruct-AWQ", simulated: true });
    return out;
  }
  if (env.OPENAI_API_KEY) out.set("openai", { provider: "openai", baseURL: env.OPENAI_BASE_URL, apiKey: env.OPENAI_API_KEY, defaultModel: DEFAULT_MODELS.openai, simulated: false });
  if (env.ANTHROPIC_API_KEY) out.set("anthropic", { provider: "anthropic", baseURL: env.ANTHROPIC_BASE_URL, apiKey: env.ANTHROPIC_API_KEY, defaultModel: DEFAULT_MODELS.anthropic, simulated: false });
  if (env.VLLM_BASE_URL && env.VLLM_MODEL) out.set("vllm", { provider: "vllm", baseURL: env.VLLM_BASE_URL, apiKey: env.VLLM_API_KEY ?? "EMPTY", defaultModel: env.VLLM_MODEL, simulated: false });
  if (out.size === 0) {
    throw new ConfigError(
      "no LLM provider is configured. Set OPENAI_API_KEY, ANTHROPIC_API_KEY, or VLLM_BASE_URL + VLLM_MODEL; " +
        "or run against the bundled provider simulator on purpose with SIEVE_SIMULATOR=true (npm start -- --simulator).",
    );
  }
  return out;
}

export interface Route {
  provider: ProviderName;
  model: string;
}

/** The configured route of a task, or the first configured provider's default model. */
export function defaultRoute(env: Env, endpoints: Map<ProviderName, ProviderEndpoint>, task: TaskName): Route {
  const { route: configured, routeVariable } = taskSettings(env, task);
  if (configured) {
    const idx = configured.indexOf(":");
    const provider = configured.slice(0, idx) as ProviderName;
    if (!endpoints.has(provider)) {
      throw new ConfigError(`${routeVariable} names provider "${provider}", which is not configured`);
    }
    return { provider, model: configured.slice(idx + 1) };
  }
  const first = [...endpoints.values()][0]!;
  return { provider: first.provider, model: first.defaultModel };
}
