import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEnv } from "@sieve/shared/config/env";
import { providerEndpoints, type ProviderEndpoint } from "@sieve/shared/config/providers";
import type { ProviderName } from "@sieve/shared/providerNames";
import { AnthropicProvider, OpenAIProvider, VllmProvider, createProviders } from "./index.js";

test("createProviders builds one provider per configured endpoint", () => {
  const env = parseEnv({ SIEVE_SIMULATOR: "true" });
  const providers = createProviders(providerEndpoints(env, "http://127.0.0.1:1"));
  assert.deepEqual([...providers.keys()].sort(), ["anthropic", "openai", "vllm"]);
  assert.ok(providers.get("openai") instanceof OpenAIProvider);
  assert.ok(providers.get("anthropic") instanceof AnthropicProvider);
  assert.ok(providers.get("vllm") instanceof VllmProvider);
  for (const [name, p] of providers) assert.equal(p.name, name);
});

test("createProviders: only what is configured; a mismatched map entry is a bug", () => {
  const only = createProviders(providerEndpoints(parseEnv({ OPENAI_API_KEY: "sk-test" })));
  assert.deepEqual([...only.keys()], ["openai"]);
  const wrong = new Map<ProviderName, ProviderEndpoint>([["openai", { provider: "anthropic", baseURL: undefined, apiKey: "k", defaultModel: "m", simulated: false }]]);
  assert.throws(() => createProviders(wrong), /holds an endpoint for "anthropic"/);
});
