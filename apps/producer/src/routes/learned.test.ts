import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";
import { parseEnv } from "@sieve/shared";
import { LearnedCache } from "@sieve/cache";
import type { LearnedService } from "../learned.js";
import { learnedRouter } from "./learned.js";

/** The router behind a stand-in for apiKeyAuth: the tenant comes from a header. */
function serve(learned: LearnedService | undefined): Promise<{ server: Server; get: (tenant: string) => Promise<any> }> {
  const app = express();
  app.use((req, res, next) => {
    res.locals.tenantId = req.header("x-tenant");
    next();
  });
  app.use(learnedRouter(parseEnv({ SIEVE_LEARNED_MAX_ERROR: "0.02", SIEVE_LEARNED_MIN_EXAMPLES: "10" }), learned));
  return new Promise((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/learned`;
      resolve({ server, get: async (tenant) => (await fetch(url, { headers: { "x-tenant": tenant } })).json() });
    });
  });
}

describe("GET /v1/learned", () => {
  const cache = new LearnedCache({ maxError: 0.02, minExamples: 10, auditRate: 0, dimensions: 2 });
  const scope = { tenantId: "acme", namespace: "default", task: "classify", promptVersion: "p1", schemaVersion: "s1", provider: "openai", model: "m", paramsHash: "h1", embedderId: "e2" };
  let on: Awaited<ReturnType<typeof serve>>;
  let off: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    for (let i = 0; i < 4; i++) cache.learn(scope, [1, 0], "a");
    on = await serve({ cache } as unknown as LearnedService);
    off = await serve(undefined);
  });
  after(() => {
    on.server.close();
    off.server.close();
  });

  test("shows the caller's scopes with their state, and a null threshold while not certified", async () => {
    assert.deepEqual(await on.get("acme"), {
      enabled: true,
      maxError: 0.02,
      minExamples: 10,
      auditRate: 0.05,
      scopes: [
        {
          namespace: "default",
          task: "classify",
          provider: "openai",
          model: "m",
          promptVersion: "p1",
          schemaVersion: "s1",
          paramsHash: "h1",
          embedder: "e2",
          state: "warming-up",
          examples: 4,
          labels: ["a"],
          calibrationPoints: 0,
          threshold: null,
          answered: 0,
          audited: 0,
          auditDisagreements: 0,
          adjudications: 0,
          adjudicatedForModel: 0,
        },
      ],
    });
    assert.deepEqual((await on.get("globex")).scopes, []);
  });

  test("says when the learned cache is off", async () => {
    assert.deepEqual(await off.get("acme"), { enabled: false, scopes: [] });
  });
});
