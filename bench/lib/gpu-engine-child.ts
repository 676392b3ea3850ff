/**
 * One simulated vLLM engine (continuous-batching timing) in its own process, for bench/gpu.ts:
 * a GPU server is another machine, so its model must not share the client's event loop. Reports
 * its URL over IPC; SIGKILL is how the benchmark kills an engine mid-run.
 *   BENCH_GPU_PORT (0 = any), BENCH_GPU_TIME_SCALE, BENCH_GPU_KV_TOKENS
 */
import { startSimulator } from "@sieve/simulator";

const sim = await startSimulator({
  port: Number(process.env.BENCH_GPU_PORT ?? 0),
  host: "127.0.0.1",
  vllm: {
    perf: { timeScale: Number(process.env.BENCH_GPU_TIME_SCALE ?? 5) },
    kvCacheTokens: Number(process.env.BENCH_GPU_KV_TOKENS ?? 65_536),
    maxNumSeqs: 256,
  },
});
process.send?.({ type: "ready", url: sim.url });
let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  void sim.close().finally(() => process.connected && process.disconnect());
};
process.once("SIGTERM", stop);
process.once("disconnect", stop);
