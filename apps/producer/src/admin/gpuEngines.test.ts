/** Merging the GPU workers' engine reports per engine (docs/console.md "GPU engines"). */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GpuEngineReport, GpuEngineState } from "@sieve/shared";
import { mergeReports } from "./gpuEngines.js";

const A = "http://gpu-a:8000/v1";
const B = "http://gpu-b:8000/v1";
const st = (url: string, o: Partial<GpuEngineState>): GpuEngineState => ({ id: url === A ? "vllm-0" : "vllm-1", url, model: "m", health: "healthy", limit: 2, inFlight: 0, signal: "grow", ...o });

test("limits and in-flight calls add up over processes; the freshest gauges win; healthy only if every process says so", () => {
  const reports: GpuEngineReport[] = [
    { process: "p1", at: 1, engines: [st(A, { limit: 5, inFlight: 3, running: 3, waiting: 0, kvUsage: 0.2, gaugesAt: 100 }), st(B, { limit: 4, inFlight: 1, health: "drained", signal: "congested", lastError: "connect ECONNREFUSED" })] },
    { process: "p2", at: 1, engines: [st(A, { limit: 7, inFlight: 2, running: 6, waiting: 1, kvUsage: 0.5, gaugesAt: 200 }), st(B, { limit: 3, inFlight: 0 })] },
  ];
  const [a, b] = mergeReports(reports);
  assert.deepEqual(
    { id: a!.id, ...a!.sample },
    { id: "vllm-0", healthy: true, health: "healthy", limit: 12, limits: [5, 7], inFlight: 5, signal: "grow", processes: 2, running: 6, waiting: 1, kvCacheUsage: 0.5 },
  );
  assert.equal(b!.sample.healthy, false);
  assert.equal(b!.sample.health, "drained in 1 of 2 processes, healthy in 1 of 2 processes");
  assert.equal(b!.sample.limit, 7);
  assert.equal(b!.sample.signal, "congested, grow");
  assert.equal(b!.sample.running, undefined, "no gauges read yet");
  assert.equal(b!.lastError, "connect ECONNREFUSED");
});

test("an engine still loading (never healthy yet) reads as starting", () => {
  const [a] = mergeReports([{ process: "p1", at: 1, engines: [st(A, { health: "unknown" })] }]);
  assert.equal(a!.sample.health, "starting");
  assert.equal(a!.sample.healthy, false);
});
