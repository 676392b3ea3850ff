/** Test helper: the three backpressure gauges from a vLLM /metrics page. */
export function parseVllmGauges(text: string): { running: number; waiting: number; kv: number } {
  const value = (name: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : NaN;
  };
  return { running: value("vllm:num_requests_running"), waiting: value("vllm:num_requests_waiting"), kv: value("vllm:kv_cache_usage_perc") };
}
