import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEnv } from "./env.js";
import { providerEndpoints, defaultRoute } from "./providers.js";
import { ConfigError } from "../errors.js";

test("defaults parse", () => {
  const e = parseEnv({});
  assert.equal(e.PORT, 8080);
  assert.equal(e.SIEVE_CLASSIFY_MAX_ITEMS, 25);
});

test("a bad value names the variable", () => {
  assert.throws(() => parseEnv({ PORT: "eighty" }), (e: Error) => e instanceof ConfigError && /PORT/.test(e.message));
  assert.throws(() => parseEnv({ SIEVE_SIMULATOR: "maybe" }), /SIEVE_SIMULATOR/);
  assert.throws(() => parseEnv({ VLLM_BASE_URL: "http://x/v1" }), /VLLM_MODEL/);
  assert.throws(() => parseEnv({ SIEVE_ROLE: "api" }), /DATABASE_URL/);
});

test("no provider configured: a ConfigError that says what to set, never a silent default", () => {
  assert.throws(() => providerEndpoints(parseEnv({})), (e: Error) => e instanceof ConfigError && /OPENAI_API_KEY/.test(e.message) && /SIEVE_SIMULATOR/.test(e.message));
});

test("the simulator is used only when asked for", () => {
  const eps = providerEndpoints(parseEnv({ SIEVE_SIMULATOR: "true" }), "http://127.0.0.1:4010");
  assert.ok([...eps.values()].every((e) => e.simulated));
  const real = providerEndpoints(parseEnv({ OPENAI_API_KEY: "sk-x" }));
  assert.deepEqual([...real.keys()], ["openai"]);
  assert.equal(real.get("openai")!.simulated, false);
});

test("routes: configured route must name a configured provider", () => {
  const env = parseEnv({ OPENAI_API_KEY: "sk-x", SIEVE_ROUTE_CLASSIFY: "anthropic:claude-haiku-4-5" });
  assert.throws(() => defaultRoute(env, providerEndpoints(env), "classify"), /not configured/);
  assert.deepEqual(defaultRoute(env, providerEndpoints(env), "translate"), { provider: "openai", model: "gpt-4.1-mini" });
});

test("answer quality: re-check off by default, rates in 0..1, recover at least the floor (hysteresis)", () => {
  const env = parseEnv({});
  assert.equal(env.SIEVE_RECHECK_RATE, 0);
  assert.equal(env.SIEVE_LEARNED_CACHE, false);
  assert.throws(() => parseEnv({ SIEVE_RECHECK_RATE: "1.5" }), /SIEVE_RECHECK_RATE/);
  assert.throws(() => parseEnv({ SIEVE_RECHECK_FLOOR: "0.95", SIEVE_RECHECK_RECOVER: "0.9" }), /SIEVE_RECHECK_RECOVER: must be at least SIEVE_RECHECK_FLOOR/);
  assert.throws(() => parseEnv({ SIEVE_LEARNED_MAX_ERROR: "0" }), /SIEVE_LEARNED_MAX_ERROR/);
});
