import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, scrubSecrets } from "./logger.js";

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
