/**
 * vLLM server load: the Prometheus `/metrics` text and `/health`, both at the server root (the
 * base URL without `/v1`). Neither route needs the API key (`--api-key` only guards /v1), so none
 * is sent. Plain HTTP and text parsing, read by the GPU lane (backpressure) and by the console
 * (engine sampling), hence here rather than in either of them.
 *
 * Gauges read (https://docs.vllm.ai/en/latest/usage/metrics.html):
 * - `vllm:num_requests_running`, `vllm:num_requests_waiting`
 * - `vllm:kv_cache_usage_perc` (a FRACTION 0..1 despite the name); before vLLM v0.10 it was
 *   `vllm:gpu_cache_usage_perc`.
 */
import { coerceError, ProviderError } from "../errors.js";

/** The server root: the base URL without a trailing `/v1` ("http://vllm:8000/v1" -> "http://vllm:8000"). */
export function vllmServerRoot(baseURL: string): string {
  return baseURL.replace(/\/+$/, "").replace(/\/v1$/, "");
}

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface VllmMetrics {
  /** Requests in the running batch, summed over engines (data-parallel ranks). */
  requestsRunning: number;
  /** Requests queued, summed over engines. */
  requestsWaiting: number;
  /** KV-cache usage as a fraction 0..1 (the highest engine), undefined when the server reports none. */
  kvCacheUsage: number | undefined;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$/;

/** Prometheus text exposition format 0.0.4: `name{label="value",...} value [timestamp]`. */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const value = parsePromValue(m[4]!);
    if (value === undefined) continue;
    out.push({ name: m[1]!, labels: m[3] ? parseLabels(m[3]) : {}, value });
  }
  return out;
}

function parsePromValue(s: string): number | undefined {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  const n = Number(s);
  return Number.isNaN(n) ? undefined : n;
}

/** `a="x",b="y \"q\""`: values may hold escaped quotes, backslashes, newlines and commas. */
function parseLabels(s: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  }
  return labels;
}

/**
 * The backpressure view of one vLLM server. `model`: only series of this `model_name` (a server
 * serves one model, but a proxy may merge several). When no series carries that name (VLLM_MODEL
 * differs from `--served-model-name`), every series counts: reporting an idle server would
 * switch backpressure off.
 */
export function parseVllmMetrics(text: string, model?: string): VllmMetrics {
  const all = parsePrometheusText(text);
  const named = model === undefined ? [] : all.filter((s) => s.labels.model_name === model);
  const samples = named.length > 0 ? all.filter((s) => s.labels.model_name === undefined || s.labels.model_name === model) : all;
  const values = (name: string) => samples.filter((s) => s.name === name && Number.isFinite(s.value)).map((s) => s.value);
  const sum = (name: string) => values(name).reduce((a, b) => a + b, 0);
  const max = (name: string) => {
    const v = values(name);
    return v.length ? Math.max(...v) : undefined;
  };
  return {
    requestsRunning: sum("vllm:num_requests_running"),
    requestsWaiting: sum("vllm:num_requests_waiting"),
    kvCacheUsage: max("vllm:kv_cache_usage_perc") ?? max("vllm:gpu_cache_usage_perc"),
  };
}

export interface ProbeOptions {
  /** @defaultValue 2000 */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Only series of this model_name. */
  model?: string;
}

function probeSignal(opts: ProbeOptions): AbortSignal {
  const t = AbortSignal.timeout(opts.timeoutMs ?? 2_000);
  return opts.signal ? AbortSignal.any([opts.signal, t]) : t;
}

/** GET `<root>/metrics`. Throws a ProviderError (provider "vllm") when the server does not answer 200. */
export async function fetchVllmMetrics(baseURL: string, opts: ProbeOptions = {}): Promise<VllmMetrics> {
  const url = `${vllmServerRoot(baseURL)}/metrics`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { signal: probeSignal(opts), headers: { accept: "text/plain" } });
    text = await res.text();
  } catch (e) {
    throw new ProviderError({ provider: "vllm", kind: "timeout", message: `vllm metrics unreachable at ${url}: ${coerceError(e).message}`, cause: e });
  }
  if (!res.ok) {
    throw new ProviderError({ provider: "vllm", kind: res.status >= 500 ? "server" : "client", status: res.status, message: `vllm metrics: HTTP ${res.status} from ${url}` });
  }
  return parseVllmMetrics(text, opts.model);
}

/** GET `<root>/health`: true when the engine answers 200, false otherwise (including unreachable). */
export async function checkVllmHealth(baseURL: string, opts: Omit<ProbeOptions, "model"> = {}): Promise<boolean> {
  try {
    const res = await fetch(`${vllmServerRoot(baseURL)}/health`, { signal: probeSignal(opts) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
