/**
 * Reference mode: the simulated "model" answers from a file of known answers instead of a hash,
 * so a benchmark can measure accuracy against gold. A TEST TOOL, like the rest of the simulator.
 *
 * File: JSON lines, one per text.
 *   classify:  {"text": "...", "label": "..."}
 *   translate: {"text": "...", "targetLanguage": "de", "translation": "..."}
 * Texts are matched after the same folding as synthetic answers (NFKC, lower case, whitespace).
 * Texts not in the file keep their synthetic answer (answer.ts).
 *
 * Noise: the reference answer is given with probability
 *   p(n, k) = clamp(baseAccuracy - perItemDrop * (n - 1) - positionDrop * k / (n - 1), minAccuracy, 1)
 * for item k (0-based) of a call with n items; otherwise a wrong answer (another allowed label, or a
 * translation with its second half missing). The shape follows what the literature on packing
 * several inputs into one prompt reports, not its numbers:
 * - Cheng, Kasai, Yu, "Batch Prompting: Efficient Inference with Large Language Model APIs",
 *   EMNLP 2023 Industry (https://aclanthology.org/2023.emnlp-industry.74): comparable accuracy for
 *   small batches, falling as the number of samples per batch and the task's difficulty grow.
 * - Lin, Diesendruck, Du, Abraham, "BatchPrompt: Accomplish more with less", ICLR 2024
 *   (https://arxiv.org/abs/2309.00384): naive batching degrades as the batch grows, and the same
 *   data point gets different answers at different positions in the prompt.
 * The defaults (0.97, 0.002 per extra item, 0.03 from first to last position) are assumptions
 * chosen to give that shape at Sieve's batch sizes; they are knobs, not measurements.
 *
 * Deterministic: whether an item is answered right depends only on (seed, text, n, k), never on
 * call order or timing, so a run is reproducible and re-asking the same item alone is stable.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { hash32, normalizeText } from "./text.js";

export const ReferenceNoise = z
  .object({
    /** Probability of the reference answer for an item asked alone. @defaultValue 1 */
    baseAccuracy: z.number().min(0).max(1).default(1),
    /** Accuracy lost per additional item in the same call. @defaultValue 0 */
    perItemDrop: z.number().min(0).max(1).default(0),
    /** Accuracy lost from the first to the last position of a call (linear). @defaultValue 0 */
    positionDrop: z.number().min(0).max(1).default(0),
    /** Accuracy never falls below this. @defaultValue 0 */
    minAccuracy: z.number().min(0).max(1).default(0),
    /** Seed of the noise (same seed, same wrong answers). @defaultValue 0 */
    seed: z.number().int().default(0),
  })
  .strict();
export type ReferenceNoise = z.infer<typeof ReferenceNoise>;

/** The noise knobs `--answers` turns on unless others are given (see the file comment). */
export const DEFAULT_REFERENCE_NOISE: ReferenceNoise = { baseAccuracy: 0.97, perItemDrop: 0.002, positionDrop: 0.03, minAccuracy: 0.5, seed: 0 };

const ClassifyLine = z.object({ text: z.string(), label: z.string().min(1) });
const TranslateLine = z.object({ text: z.string(), targetLanguage: z.string().min(1), translation: z.string() });

/**
 * Parses `base:0.95,perItem:0.002,position:0.03,min:0.5,seed:7` (any subset; the rest from the
 * defaults) into noise knobs. Throws a message naming the bad part.
 */
export function parseNoiseSpec(spec: string, defaults: ReferenceNoise = DEFAULT_REFERENCE_NOISE): ReferenceNoise {
  const names: Record<string, keyof ReferenceNoise> = { base: "baseAccuracy", perItem: "perItemDrop", position: "positionDrop", min: "minAccuracy", seed: "seed" };
  const out: Record<string, number> = { ...defaults };
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [k, v] = part.split(":").map((s) => s.trim());
    const key = k ? names[k] : undefined;
    const n = Number(v);
    if (!key || v === undefined || v === "" || !Number.isFinite(n)) {
      throw new Error(`noise: "${part}" is not one of ${Object.keys(names).map((x) => `${x}:<number>`).join(", ")}`);
    }
    out[key] = n;
  }
  const parsed = ReferenceNoise.safeParse(out);
  if (!parsed.success) throw new Error(`noise: ${parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** A uniform number in [0, 1) from a string (FNV-1a, then a 32-bit mix). */
function unit(s: string): number {
  let h = hash32(s);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}

export interface ReferenceStats {
  classify: number;
  translate: number;
}

export class ReferenceAnswers {
  private readonly labels = new Map<string, string>();
  private readonly translations = new Map<string, string>();

  constructor(readonly noise: ReferenceNoise = ReferenceNoise.parse({})) {}

  /** Reads a JSONL reference file. Throws naming the line of the first bad row. */
  static load(path: string, noise?: ReferenceNoise): ReferenceAnswers {
    return ReferenceAnswers.fromJsonl(readFileSync(path, "utf8"), noise, path);
  }

  static fromJsonl(text: string, noise?: ReferenceNoise, source = "reference"): ReferenceAnswers {
    const ref = new ReferenceAnswers(noise);
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw new Error(`${source}:${i + 1}: not JSON`);
      }
      const t = TranslateLine.safeParse(v);
      if (t.success) return ref.addTranslation(t.data.text, t.data.targetLanguage, t.data.translation);
      const c = ClassifyLine.safeParse(v);
      if (c.success) return ref.addLabel(c.data.text, c.data.label);
      throw new Error(`${source}:${i + 1}: expected {"text","label"} or {"text","targetLanguage","translation"}`);
    });
    return ref;
  }

  addLabel(text: string, label: string): void {
    this.labels.set(normalizeText(text), label);
  }

  addTranslation(text: string, targetLanguage: string, translation: string): void {
    this.translations.set(`${targetLanguage.toLowerCase()}\n${normalizeText(text)}`, translation);
  }

  size(): ReferenceStats {
    return { classify: this.labels.size, translate: this.translations.size };
  }

  /** Probability that item `position` (0-based) of a call with `n` items gets the reference answer. */
  accuracy(n: number, position: number): number {
    const { baseAccuracy, perItemDrop, positionDrop, minAccuracy } = this.noise;
    const rel = n > 1 ? position / (n - 1) : 0;
    const p = baseAccuracy - perItemDrop * Math.max(0, n - 1) - positionDrop * rel;
    return Math.min(1, Math.max(minAccuracy, p));
  }

  private correct(text: string, n: number, position: number): boolean {
    const p = this.accuracy(n, position);
    if (p >= 1) return true;
    return unit(`${this.noise.seed}\n${n}\n${position}\n${normalizeText(text)}`) < p;
  }

  /**
   * The label for `text` among `allowed`, or undefined when the file has no label for it (or its
   * label is not allowed in this call: then the synthetic answer applies).
   */
  label(text: string, allowed: readonly string[], n: number, position: number): string | undefined {
    const gold = this.labels.get(normalizeText(text));
    if (gold === undefined || !allowed.includes(gold)) return undefined;
    if (this.correct(text, n, position) || allowed.length < 2) return gold;
    const others = allowed.filter((l) => l !== gold);
    return others[hash32(`${this.noise.seed}\nwrong\n${n}\n${position}\n${normalizeText(text)}`) % others.length];
  }

  /** The translation of `text` into `target`, or undefined when the file has none. */
  translation(text: string, target: string, n: number, position: number): string | undefined {
    const gold = this.translations.get(`${target.toLowerCase()}\n${normalizeText(text)}`);
    if (gold === undefined) return undefined;
    if (this.correct(text, n, position)) return gold;
    const words = gold.split(" ");
    return words.length > 1 ? words.slice(0, Math.ceil(words.length / 2)).join(" ") : `${gold} ${gold}`;
  }
}
