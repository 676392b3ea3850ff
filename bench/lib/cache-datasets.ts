/**
 * Dataset loading for bench/cache.ts (files in ../shared/datasets, see its README): labelled
 * pairs (PAWS, STS-B) and streams (BANKING77, AG News with injected repeats).
 */
import path from "node:path";
import { readCsv } from "./cache-csv.js";
import { paraphrase, rng, shuffle } from "./cache-paraphrase.js";

export interface LabelledPair {
  a: string;
  b: string;
  /** true: the two texts mean the same (a cache hit would be right). */
  duplicate: boolean;
}

export interface StreamItem {
  text: string;
  label: string;
  /** How the item entered the stream. */
  kind: "original" | "exact-repeat" | "paraphrase-repeat";
  /** For repeats: the index (in the stream) of the item repeated. */
  of?: number;
}

/** STS-B scores that count as duplicate / non-duplicate; pairs in between are left out. */
export const STSB_DUPLICATE_MIN = 4.0;
export const STSB_NON_DUPLICATE_MAX = 2.0;

export function datasetsDir(): string {
  return process.env.SIEVE_DATASETS_DIR ?? path.resolve(import.meta.dirname, "../../../shared/datasets");
}

export function loadPaws(limit?: number): LabelledPair[] {
  const rows = readCsv(path.join(datasetsDir(), "paws_wiki_test/paws_wiki_test.csv"));
  const pairs = rows.map((r) => ({ a: r.sentence1!, b: r.sentence2!, duplicate: r.label === "1" }));
  return limit ? sample(pairs, limit, 11) : pairs;
}

export function loadStsb(limit?: number): { pairs: LabelledPair[]; excluded: number; total: number } {
  const rows = readCsv(path.join(datasetsDir(), "stsb/stsb.csv"));
  const pairs: LabelledPair[] = [];
  let excluded = 0;
  for (const r of rows) {
    const score = Number(r.score);
    if (score >= STSB_DUPLICATE_MIN) pairs.push({ a: r.sentence1!, b: r.sentence2!, duplicate: true });
    else if (score <= STSB_NON_DUPLICATE_MAX) pairs.push({ a: r.sentence1!, b: r.sentence2!, duplicate: false });
    else excluded++;
  }
  return { pairs: limit ? sample(pairs, limit, 12) : pairs, excluded, total: rows.length };
}

/** BANKING77 test queries in a seeded random order (the file is sorted by intent). */
export function loadBankingStream(limit?: number): StreamItem[] {
  const rows = readCsv(path.join(datasetsDir(), "banking77_test/banking77_test.csv"));
  const items = rows.map((r): StreamItem => ({ text: r.text!.trim(), label: r.label!, kind: "original" }));
  const shuffled = shuffle(items, rng(77));
  return limit ? shuffled.slice(0, limit) : shuffled;
}

/** AG News text: title + description with the dataset's HTML-entity remnants undone. */
export function agNewsText(title: string, description: string): string {
  const clean = (s: string) =>
    s
      .replace(/#36;/g, "$")
      .replace(/#39;/g, "'")
      .replace(/quot;/g, '"')
      .replace(/#151;/g, "—")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&")
      .replace(/\\/g, " ")
      .replace(/\s+/g, " ")
      .trim();
  return `${clean(title)}. ${clean(description)}`;
}

/**
 * AG News test articles in seeded random order, with repeats injected at random later positions:
 * `exactShare` of the originals repeated verbatim and `paraphraseShare` repeated with
 * deterministic edits (cache-paraphrase.ts).
 */
export function loadAgNewsStream(opts: { limit?: number; exactShare: number; paraphraseShare: number }): StreamItem[] {
  const rows = readCsv(path.join(datasetsDir(), "ag_news_test/ag_news_test.csv"));
  const random = rng(4);
  let originals = shuffle(
    rows.map((r): StreamItem => ({ text: agNewsText(r.title!, r.description!), label: r.label_name!, kind: "original" })),
    random,
  );
  if (opts.limit) originals = originals.slice(0, opts.limit);
  const nExact = Math.round(originals.length * opts.exactShare);
  const nPara = Math.round(originals.length * opts.paraphraseShare);
  const picks = shuffle(
    originals.map((_, i) => i),
    random,
  ).slice(0, nExact + nPara);
  // Each repeat goes after its source: (source, position) pairs, inserted from the back.
  const inserts = picks.map((src, k) => {
    const pos = src + 1 + Math.floor(random() * (originals.length - src));
    const o = originals[src]!;
    const item: StreamItem =
      k < nExact ? { text: o.text, label: o.label, kind: "exact-repeat" } : { text: paraphrase(o.text, random), label: o.label, kind: "paraphrase-repeat" };
    return { src, pos, item };
  });
  const stream: Array<StreamItem & { srcOriginal?: number }> = [];
  const byPos = new Map<number, typeof inserts>();
  for (const ins of inserts) byPos.set(ins.pos, [...(byPos.get(ins.pos) ?? []), ins]);
  const originalIndex = new Map<number, number>();
  for (let i = 0; i <= originals.length; i++) {
    for (const ins of byPos.get(i) ?? []) stream.push({ ...ins.item, of: originalIndex.get(ins.src)! });
    if (i < originals.length) {
      originalIndex.set(i, stream.length);
      stream.push(originals[i]!);
    }
  }
  return stream;
}

function sample<T>(items: T[], n: number, seed: number): T[] {
  return shuffle(items, rng(seed)).slice(0, n);
}
