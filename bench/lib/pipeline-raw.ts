/**
 * (a) Raw BullMQ throughput: Queue.addBulk of N no-op jobs while one Worker with a no-op processor
 * consumes them. jobs/s = N / (time of the last 'completed' event - time just before the first
 * addBulk). Same Redis, same process model (one Node process) as the Sieve measurement.
 */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { round } from "./pipeline-util.js";

export interface RawOptions {
  redisUrl: string;
  prefix: string;
  jobs: number;
  concurrency: number;
  /** Jobs per addBulk call. */
  chunk: number;
  /** Jobs run (and discarded) first to warm up connections and the JIT. */
  warmupJobs: number;
}

export interface RawResult {
  jobs: number;
  concurrency: number;
  chunk: number;
  jobOptions: string;
  addMs: number;
  totalMs: number;
  addJobsPerS: number;
  jobsPerS: number;
  startedAt: string;
  finishedAt: string;
  /** 1-minute load average before / after (set by the caller). */
  loadAvg1m?: [number, number];
}

async function runOnce(queue: Queue, worker: Worker, n: number, chunk: number): Promise<{ addMs: number; totalMs: number; startedAt: number }> {
  let done = 0;
  let resolveAll!: (t: number) => void;
  const allDone = new Promise<number>((r) => (resolveAll = r));
  const onCompleted = () => {
    if (++done === n) resolveAll(performance.now());
  };
  worker.on("completed", onCompleted);
  const startedAt = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const size = Math.min(chunk, n - i);
    await queue.addBulk(Array.from({ length: size }, (_, k) => ({ name: "noop", data: { i: i + k }, opts: { removeOnComplete: true, removeOnFail: true } })));
  }
  const tAdded = performance.now();
  const tEnd = await allDone;
  worker.off("completed", onCompleted);
  return { addMs: tAdded - t0, totalMs: tEnd - t0, startedAt };
}

export async function runRawBullmq(opts: RawOptions): Promise<RawResult> {
  const queueConn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const workerConn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const name = "bench-noop";
  const queue = new Queue(name, { connection: queueConn, prefix: opts.prefix });
  const worker = new Worker(name, async () => undefined, { connection: workerConn, prefix: opts.prefix, concurrency: opts.concurrency });
  worker.on("error", () => {});
  try {
    await worker.waitUntilReady();
    await queue.waitUntilReady();
    if (opts.warmupJobs > 0) await runOnce(queue, worker, opts.warmupJobs, opts.chunk);
    const r = await runOnce(queue, worker, opts.jobs, opts.chunk);
    return {
      jobs: opts.jobs,
      concurrency: opts.concurrency,
      chunk: opts.chunk,
      jobOptions: "removeOnComplete: true, tiny payload {i}",
      addMs: round(r.addMs, 1),
      totalMs: round(r.totalMs, 1),
      addJobsPerS: round(opts.jobs / (r.addMs / 1000), 0),
      jobsPerS: round(opts.jobs / (r.totalMs / 1000), 0),
      startedAt: new Date(r.startedAt).toISOString(),
      finishedAt: new Date(r.startedAt + r.totalMs).toISOString(),
    };
  } finally {
    await worker.close().catch(() => {});
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    await Promise.allSettled([queueConn.quit(), workerConn.quit()]);
  }
}
