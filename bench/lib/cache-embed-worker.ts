/** Worker thread for cache-embed-pool.ts: one UseLiteEmbedder per thread (tfjs runs on one core). */
import { parentPort } from "node:worker_threads";
import { UseLiteEmbedder } from "../../packages/cache/src/embeddings/use-lite.js";

const embedder = new UseLiteEmbedder({ batchSize: 64 });
parentPort!.on("message", (msg: { id: number; texts: string[] }) => {
  embedder.embed(msg.texts).then(
    (vectors) => {
      const flat = new Float32Array(vectors.length * embedder.dimensions);
      vectors.forEach((v, i) => flat.set(v, i * embedder.dimensions));
      parentPort!.postMessage({ id: msg.id, flat }, [flat.buffer]);
    },
    (e: unknown) => parentPort!.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
