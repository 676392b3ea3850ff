/**
 * Deterministic "paraphrase-ish" edits for the AG News stream: synonym swaps from a small list,
 * swapping the two halves of a sentence around its first comma, lower-casing, and punctuation
 * changes. Numbers and negations are never touched (the guards would rightly refuse those).
 * These are cheap surface edits, not real paraphrases: they are easier than human rewording.
 */
import { createRng } from "@sieve/simulator/faults";

/** mulberry32 seeded PRNG in [0, 1): the simulator's, so both draw the same sequences. */
export function rng(seed: number): () => number {
  return createRng(seed);
}

export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export const SYNONYMS: ReadonlyArray<[string, string]> = [
  ["said", "stated"],
  ["says", "states"],
  ["company", "firm"],
  ["companies", "firms"],
  ["big", "large"],
  ["buy", "purchase"],
  ["bought", "purchased"],
  ["shows", "indicates"],
  ["quickly", "rapidly"],
  ["help", "assist"],
  ["start", "begin"],
  ["started", "began"],
  ["plans", "intends"],
  ["announced", "revealed"],
  ["officials", "authorities"],
  ["government", "administration"],
  ["also", "additionally"],
  ["rose", "increased"],
  ["fell", "dropped"],
  ["profit", "earnings"],
  ["deal", "agreement"],
  ["talks", "negotiations"],
  ["team", "squad"],
  ["won", "claimed"],
  ["chief", "head"],
  ["reported", "stated"],
  ["major", "key"],
  ["largest", "biggest"],
  ["new", "fresh"],
  ["biggest", "largest"],
];

function swapSynonyms(text: string, random: () => number): string {
  let out = text;
  let swaps = 0;
  for (const [from, to] of shuffle(SYNONYMS, random)) {
    if (swaps >= 3) break;
    const re = new RegExp(`\\b${from}\\b`, "i");
    if (!re.test(out)) continue;
    out = out.replace(re, (m) => (m[0] === m[0]!.toUpperCase() ? to[0]!.toUpperCase() + to.slice(1) : to));
    swaps++;
  }
  return out;
}

/** "A, B." -> "B, a." for the sentence after the title, when both halves have 3+ words. */
function swapClauses(text: string): string {
  const dot = text.indexOf(". ");
  const head = dot >= 0 ? text.slice(0, dot + 2) : "";
  const body = dot >= 0 ? text.slice(dot + 2) : text;
  const comma = body.indexOf(", ");
  if (comma < 0) return text;
  const first = body.slice(0, comma);
  let second = body.slice(comma + 2).replace(/[.!?]\s*$/, "");
  if (first.split(" ").length < 3 || second.split(" ").length < 3) return text;
  second = second[0]!.toUpperCase() + second.slice(1);
  const firstLower = /^[A-Z][a-z]/.test(first) ? first[0]!.toLowerCase() + first.slice(1) : first;
  return `${head}${second}, ${firstLower}.`;
}

export function paraphrase(text: string, random: () => number): string {
  let out = text;
  if (random() < 0.8) out = swapSynonyms(out, random);
  if (random() < 0.5) out = swapClauses(out);
  if (random() < 0.3) out = out.toLowerCase();
  if (random() < 0.5) out = out.replace(/\.\s*$/, "").replace(/ - /g, ": ");
  if (out === text) out = text.toLowerCase() === text ? `${text} ` : text.toLowerCase();
  return out;
}
