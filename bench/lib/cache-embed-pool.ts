/**
 * Embeds many texts with USE-lite on several worker threads (tfjs' CPU backend uses one core per
 * thread). Used to prepare the benchmark's embeddings quickly; the embedder's own single-thread
 * throughput is measured separately.
 */
import { Worker } from "node:worker_threads";

export interface PoolResult {
  vectors: Float32Array[];
  seconds: number;
}

export async function embedWithPool(
  texts: string[],
  opts: { workers: number; chunk?: number; onProgress?: (done: number, total: number) => void },
): Promise<PoolResult> {
  const dims = 512;
  const chunk = opts.chunk ?? 128;
  const workers = Array.from(
    { length: Math.max(1, opts.workers) },
    () => new Worker(new URL("./cache-embed-worker-boot.mjs", import.meta.url)),
  );
  const out = new Array<Float32Array>(texts.length);
  const started = performance.now();
  let next = 0;
  let done = 0;
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.on("error", reject);
            const send = () => {
              if (next >= texts.length) return resolve();
              const start = next;
              const part = texts.slice(start, start + chunk);
              next += part.length;
              w.once("message", (msg: { id: number; flat?: Float32Array; error?: string }) => {
                if (msg.error || !msg.flat) return reject(new Error(msg.error ?? "worker returned nothing"));
                for (let i = 0; i < part.length; i++) out[start + i] = msg.flat.subarray(i * dims, (i + 1) * dims);
                done += part.length;
                opts.onProgress?.(done, texts.length);
                send();
              });
              w.postMessage({ id: start, texts: part });
            };
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return { vectors: out, seconds: (performance.now() - started) / 1000 };
}
