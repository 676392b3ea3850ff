/**
 * The provider simulator in its own process, for bench/pipeline.ts: a real provider is another
 * machine, so the simulator's CPU (tokenizing prompts, generating answers) must not be charged to
 * Sieve's event loop. Reports its URL over IPC; controlled over its HTTP control API (/_sim/...);
 * stops on SIGTERM or when the parent disconnects.
 */
import { startSimulator } from "@sieve/simulator";

const sim = await startSimulator({ port: 0, host: "127.0.0.1", faults: { latencyMs: Number(process.env.BENCH_SIM_LATENCY_MS ?? 0) } });
process.send?.({ type: "ready", url: sim.url });

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  void sim.close().finally(() => {
    if (process.connected) process.disconnect();
  });
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.once("disconnect", stop);
