import { test } from "node:test";
import assert from "node:assert/strict";
import { CliError, errorOf, headerFromFlags, main } from "./main.js";
import { Progress, formatBytes } from "./progress.js";

test("header from flags: classify and translate, options passed through", () => {
  assert.deepEqual(headerFromFlags({ task: "classify", labels: "a, b,c", lane: "batch", provider: "openai" }), { task: "classify", labels: ["a", "b", "c"], lane: "batch", provider: "openai" });
  assert.deepEqual(headerFromFlags({ task: "translate", "target-language": "de", "source-language": "en", model: "m" }), { task: "translate", targetLanguage: "de", sourceLanguage: "en", model: "m" });
  assert.throws(() => headerFromFlags({ task: "classify" }), CliError);
  assert.throws(() => headerFromFlags({ task: "summarize" }), /--task classify\|translate/);
});

test("lane auto and --deadline are refused for bulk uploads, naming the flag (exit code 2)", () => {
  assert.throws(() => headerFromFlags({ task: "classify", labels: "a,b", lane: "auto", deadline: "PT1H" }), (e: CliError) => e.exitCode === 2 && /^--lane auto: not available for `sieve submit`/.test(e.message));
  assert.throws(() => headerFromFlags({ task: "classify", labels: "a,b", deadline: "P1D" }), (e: CliError) => e.exitCode === 2 && /^--deadline: not available/.test(e.message));
});

test("progress line: percentage, bytes, lines", () => {
  const p = new Progress(2_048, process.stderr, false);
  p.add(1_024, 10);
  assert.match(p.render(), /50\.0% 1\.0 KiB\/2\.0 KiB, 10 lines/);
  assert.equal(formatBytes(5 * 1024 * 1024), "5.0 MiB");
});

test("usage errors exit with 2 and say what is missing", async () => {
  const err = Object.assign(process.stderr, {});
  await assert.rejects(main(["status"], { out: process.stdout, err, env: { SIEVE_API_KEY: "k" } }), (e: CliError) => e.exitCode === 2 && /job id is required/.test(e.message));
  await assert.rejects(main(["status", "job_x"], { out: process.stdout, err, env: {} }), (e: CliError) => e.exitCode === 2 && /SIEVE_API_KEY/.test(e.message));
});

test("every error answer is shown with the server's code and message (or its raw body)", () => {
  const json = errorOf(400, JSON.stringify({ error: { code: "invalid_request", message: "lane: not enabled", details: [{ field: "lane" }] } }));
  assert.match(json.message, /^HTTP 400: invalid_request: lane: not enabled\n/);
  assert.equal(errorOf(502, "<html>Bad gateway</html>").message, "HTTP 502: <html>Bad gateway</html>");
  assert.equal(errorOf(503, "").message, "HTTP 503: (empty body)");
});
