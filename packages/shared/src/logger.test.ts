import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, scrubSecrets } from "./logger.js";
import { coerceError } from "./errors.js";

function capture() {
  const lines: string[] = [];
  const dest = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
  return { log: createLogger({ level: "info", destination: dest }), lines };
}

test("secrets never reach logs: redacted fields and scrubbed messages", () => {
  const { log, lines } = capture();
  log.info({ apiKey: "sk-live-abcdef123456", headers: { authorization: "Bearer abc.def" }, nested: { password: "hunter2" } }, "calling with key sk-proj-ZZZZZZZZ and Bearer tok123");
  const out = lines.join("");
  for (const secret of ["sk-live-abcdef123456", "abc.def", "hunter2", "sk-proj-ZZZZZZZZ", "tok123"]) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
  assert.match(out, /\[redacted\]/);
});

test("scrubSecrets", () => {
  assert.equal(scrubSecrets("key sk-abcdefgh1234 ok"), "key [redacted] ok");
});

test("a failed statement is logged as SQLSTATE, table and constraint, never with its parameters", async () => {
  const { DrizzleQueryError } = await import("drizzle-orm/errors");
  const pgError = Object.assign(new Error('value too long: "private item text 7781"'), { code: "23514", severity: "ERROR", table: "items", constraint: "items_text_check" });
  const failed = new DrizzleQueryError("insert into items (text) values ($1), ($2)", ["private item text 7781", "another secret 5521"], pgError);
  const { log, lines } = capture();
  log.error({ err: failed }, "as an err object");
  log.error({ err: coerceError(failed).message }, "as a message");
  log.error({ detail: failed.message }, "as any string field");
  const out = lines.join("");
  for (const secret of ["private item text 7781", "another secret 5521", "params:"]) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
  assert.match(out, /database error 23514 table=items constraint=items_text_check/);
});
