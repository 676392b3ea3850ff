import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePrometheusText, parseVllmMetrics, vllmServerRoot } from "./metrics.js";

const MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ";

// Shape of a vLLM v0.11 /metrics page (trimmed): two data-parallel engines.
const V011 = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="${MODEL}"} 3.0
vllm:num_requests_running{engine="1",model_name="${MODEL}"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="${MODEL}"} 7.0
vllm:num_requests_waiting{engine="1",model_name="${MODEL}"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="${MODEL}"} 0.42
vllm:kv_cache_usage_perc{engine="1",model_name="${MODEL}"} 0.61
vllm:prefix_cache_hits_total{engine="0",model_name="${MODEL}"} 1234.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="${MODEL}"} 10.0
`;

// Older vLLM (< v0.10): gpu_cache_usage_perc, no engine label.
const OLD = `vllm:num_requests_running{model_name="${MODEL}"} 1
vllm:num_requests_waiting{model_name="${MODEL}"} 4
vllm:gpu_cache_usage_perc{model_name="${MODEL}"} 0.9
`;

test("parsePrometheusText: names, labels with escapes, special values; comments skipped", () => {
  const s = parsePrometheusText(`# HELP x y\nfoo 1\nbar{a="x,y",b="q\\"uote"} 2.5 1700000000\nbaz{le="+Inf"} +Inf\nnan NaN\ngarbage line here\n`);
  assert.equal(s.length, 4);
  assert.deepEqual(s[0], { name: "foo", labels: {}, value: 1 });
  assert.deepEqual(s[1], { name: "bar", labels: { a: "x,y", b: 'q"uote' }, value: 2.5 });
  assert.equal(s[2]?.value, Infinity);
  assert.ok(Number.isNaN(s[3]!.value));
});

test("parseVllmMetrics: running/waiting summed over engines, KV usage the highest engine", () => {
  assert.deepEqual(parseVllmMetrics(V011), { requestsRunning: 5, requestsWaiting: 7, kvCacheUsage: 0.61 });
  assert.deepEqual(parseVllmMetrics(V011, MODEL), { requestsRunning: 5, requestsWaiting: 7, kvCacheUsage: 0.61 });
  // A name no series carries: every series counts rather than an idle-looking server.
  assert.deepEqual(parseVllmMetrics(V011, "other-model"), { requestsRunning: 5, requestsWaiting: 7, kvCacheUsage: 0.61 });
  const two = V011 + 'vllm:num_requests_running{engine="0",model_name="other"} 100\n';
  assert.deepEqual(parseVllmMetrics(two, MODEL), { requestsRunning: 5, requestsWaiting: 7, kvCacheUsage: 0.61 });
  assert.equal(parseVllmMetrics(two).requestsRunning, 105);
});

test("parseVllmMetrics: falls back to gpu_cache_usage_perc on older servers", () => {
  assert.deepEqual(parseVllmMetrics(OLD), { requestsRunning: 1, requestsWaiting: 4, kvCacheUsage: 0.9 });
  assert.deepEqual(parseVllmMetrics(""), { requestsRunning: 0, requestsWaiting: 0, kvCacheUsage: undefined });
});

test("vllmServerRoot strips a trailing /v1", () => {
  assert.equal(vllmServerRoot("http://vllm:8000/v1"), "http://vllm:8000");
  assert.equal(vllmServerRoot("http://vllm:8000/v1/"), "http://vllm:8000");
  assert.equal(vllmServerRoot("http://127.0.0.1:4010/vllm/v1"), "http://127.0.0.1:4010/vllm");
  assert.equal(vllmServerRoot("http://vllm:8000"), "http://vllm:8000");
});
