/** Docs match the code: every configuration variable is in the README's table. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Env } from "@sieve/shared";

test("README lists every environment variable", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const shape = (Env as unknown as { _def?: unknown; in?: { shape: Record<string, unknown> }; shape?: Record<string, unknown> });
  const keys = Object.keys(shape.in?.shape ?? shape.shape ?? {});
  assert.ok(keys.length > 40, `found ${keys.length} variables`);
  const missing = keys.filter((k) => !readme.includes(`| \`${k}\` |`));
  assert.deepEqual(missing, [], "run python3 scripts/env-table.py and update README.md");
});

test("the README's test command is what CI runs", () => {
  const ci = readFileSync(new URL("../.ci/run", import.meta.url), "utf8");
  assert.match(ci, /^npm test$/m);
});

test("every docker-compose service restarts by itself (docs/operations.md#outages)", () => {
  const compose = readFileSync(new URL("../docker-compose.yml", import.meta.url), "utf8");
  const body = compose.slice(compose.indexOf("\nservices:\n") + 1, compose.indexOf("\nvolumes:\n"));
  // Service blocks start at two spaces of indentation under `services:`.
  const blocks = body.split(/\n(?=  [a-z][a-z0-9_-]*:\n)/).slice(1);
  assert.ok(blocks.length >= 5, `found ${blocks.length} services`);
  const without = blocks.filter((b) => !/\n    restart: (always|unless-stopped|on-failure)/.test(b)).map((b) => b.trim().split(":")[0]);
  assert.deepEqual(without, [], "services without a restart policy");
});
