/**
 * False-hit guards (docs/providers.md, "Traps other systems fell into"):
 * embeddings put "is" and "is not", or "2+2" and "2+3", close together, so a semantic cache hit is
 * refused when the two texts differ in negation or in their numbers, unless the task allows it.
 * Pure functions; English cue words (the embedded embedder is English-only too).
 *
 * Negation: the number of negation cues must be equal (not, no, never, none, nothing, nobody,
 * nowhere, neither, nor, without, cannot, any "n't" contraction, common apostrophe-less forms
 * such as "dont"/"cant", and "unable"). Counting (not parity) is deliberate: a miss only costs an
 * LLM call, a false hit returns a wrong answer.
 *
 * Numbers: the multisets of numeric facts must be equal: numbers (digits, decimals, thousands
 * separators, number words from two up; "one" is left out, it is mostly a pronoun), arithmetic
 * expressions kept whole ("2+2" != "2+3", "10-3" != "3-10"), percentages, currency markers
 * ($, €, £, ¥, ₹ and their common words / ISO codes), month names, and time units after a number
 * ("2 days" != "2 weeks"). ISO dates become month + numbers, so "2024-01-05" == "January 5, 2024".
 */

export interface GuardOptions {
  /** Allow a hit between texts whose negation differs. @defaultValue false */
  allowNegationMismatch?: boolean | undefined;
  /** Allow a hit between texts whose numbers, amounts or dates differ. @defaultValue false */
  allowNumberMismatch?: boolean | undefined;
}

export interface GuardResult {
  ok: boolean;
  /** Why the match was refused. */
  reason?: "negation" | "numbers";
}

export function guardedMatch(queryText: string, candidateText: string, opts: GuardOptions = {}): GuardResult {
  if (!opts.allowNegationMismatch && negationCount(queryText) !== negationCount(candidateText)) return { ok: false, reason: "negation" };
  if (!opts.allowNumberMismatch && numberSignature(queryText) !== numberSignature(candidateText)) return { ok: false, reason: "numbers" };
  return { ok: true };
}

const NEGATION_WORDS = new Set([
  "not",
  "no",
  "never",
  "none",
  "nothing",
  "nobody",
  "nowhere",
  "neither",
  "nor",
  "without",
  "cannot",
  "unable",
  // Contractions typed without the apostrophe (common in support queries).
  "dont",
  "doesnt",
  "didnt",
  "isnt",
  "arent",
  "wasnt",
  "werent",
  "cant",
  "couldnt",
  "wont",
  "wouldnt",
  "shouldnt",
  "havent",
  "hasnt",
  "hadnt",
  "mustnt",
  "neednt",
  "aint",
]);

function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc`´]/g, "'")
    .split(/[^\p{L}\p{N}']+/u)
    .map((w) => w.replace(/^'+|'+$/g, ""))
    .filter((w) => w.length > 0);
}

/** How many negation cues a text holds. */
export function negationCount(text: string): number {
  let n = 0;
  for (const w of words(text)) {
    if (NEGATION_WORDS.has(w) || w.endsWith("n't")) n++;
  }
  return n;
}

const NUMBER_WORDS: Record<string, number> = {
  zero: 0,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
  dozen: 12,
};
const SCALE_WORDS: Record<string, number> = { hundred: 100, thousand: 1_000, million: 1_000_000, billion: 1_000_000_000 };

const MONTHS: Record<string, number> = {
  january: 1,
  jan: 1,
  february: 2,
  feb: 2,
  march: 3,
  mar: 3,
  april: 4,
  apr: 4,
  may: 5,
  june: 6,
  jun: 6,
  july: 7,
  jul: 7,
  august: 8,
  aug: 8,
  september: 9,
  sep: 9,
  sept: 9,
  october: 10,
  oct: 10,
  november: 11,
  nov: 11,
  december: 12,
  dec: 12,
};
/** Month names that are also ordinary words ("may", "march"): only months next to a number ("May 5", "5th of May"). */
const AMBIGUOUS_MONTHS = new Set(["may", "march", "august", "mar", "jan", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "feb", "apr", "sept"]);

const CURRENCY_WORDS: Record<string, string> = {
  dollar: "$",
  dollars: "$",
  usd: "$",
  bucks: "$",
  euro: "€",
  euros: "€",
  eur: "€",
  gbp: "£",
  sterling: "£",
  yen: "¥",
  jpy: "¥",
  rupee: "₹",
  rupees: "₹",
  inr: "₹",
};

const TIME_UNITS: Record<string, string> = {
  second: "second",
  seconds: "second",
  sec: "second",
  secs: "second",
  minute: "minute",
  minutes: "minute",
  min: "minute",
  mins: "minute",
  hour: "hour",
  hours: "hour",
  hr: "hour",
  hrs: "hour",
  day: "day",
  days: "day",
  week: "week",
  weeks: "week",
  month: "month",
  months: "month",
  year: "year",
  years: "year",
  yr: "year",
  yrs: "year",
};

const ORDINAL_SUFFIXES = new Set(["st", "nd", "rd", "th"]);
const UNIT_SUFFIXES = new Set(["k", "m", "bn", "am", "pm", "kg", "g", "mg", "lb", "lbs", "km", "cm", "mm", "mi", "gb", "mb", "tb", "kb", "ml"]);

/** Own keys only: `"constructor" in {}` is true. */
function has(record: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(record, key);
}

/** Canonical decimal of a numeric string: "1,000" -> "1000", "10.50" -> "10.5", "007" -> "7". */
function canonicalNumber(raw: string): string {
  const n = Number(raw.replace(/,/g, ""));
  return Number.isFinite(n) ? String(n) : raw;
}

/**
 * A canonical string of a text's numeric facts (sorted multiset), equal for texts that state the
 * same numbers, amounts, dates and arithmetic.
 */
export function numberSignature(text: string): string {
  const facts: string[] = [];
  let t = text.toLowerCase().normalize("NFKC");

  // ISO dates first, so their hyphens are not read as subtraction.
  t = t.replace(/\b(\d{4})-(\d{1,2})-(\d{1,2})\b/g, (_m, y: string, mo: string, d: string) => {
    facts.push(`month:${Number(mo)}`, `n:${canonicalNumber(d)}`, `n:${canonicalNumber(y)}`);
    return " ";
  });
  // Arithmetic expressions are kept whole: order and operators matter.
  const num = String.raw`\d+(?:[.,]\d+)*`;
  const exprRe = new RegExp(String.raw`(?<![\w.])${num}(?:\s*[-+*/×÷^x]\s*${num})+(?![\w.])`, "g");
  t = t.replace(exprRe, (m) => {
    const e = m.replace(/\s+/g, "").replace(/×|x/g, "*").replace(/÷/g, "/");
    facts.push(`expr:${e.replace(/\d+(?:[.,]\d+)*/g, canonicalNumber)}`);
    return " ";
  });
  // Currency symbols (the amount itself is collected as a number below).
  for (const m of t.matchAll(/[$€£¥₹]/g)) facts.push(`cur:${m[0]}`);
  t = t.replace(/[$€£¥₹]/g, " ");
  t = t.replace(/per\s*cent\b/g, "percent");

  // Numbers keep an attached suffix ("10k", "5pm", "3rd"); words are letter runs.
  const clean = [...t.matchAll(/\d+(?:[.,]\d+)*(?:%|[a-z]+)?|\p{L}+/gu)].map((m) => m[0]);
  // Number words combine: "twenty five" = 25, "two hundred" = 200.
  let wordValue: number | null = null;
  let wordTotal = 0;
  const flushWords = () => {
    if (wordValue !== null) facts.push(`n:${wordTotal + wordValue}`);
    wordValue = null;
    wordTotal = 0;
  };
  const isNumberToken = (tok: string | undefined): boolean => !!tok && (/^\d/.test(tok) || has(NUMBER_WORDS, tok));
  for (let i = 0; i < clean.length; i++) {
    const tok = clean[i]!;
    const next = clean[i + 1];
    const prev = clean[i - 1];
    if (has(NUMBER_WORDS, tok)) {
      wordValue = (wordValue ?? 0) + NUMBER_WORDS[tok]!;
      continue;
    }
    if (has(SCALE_WORDS, tok) && wordValue !== null) {
      const scale = SCALE_WORDS[tok]!;
      if (scale >= 1000) {
        wordTotal += wordValue * scale;
        wordValue = 0;
      } else wordValue *= scale;
      continue;
    }
    flushWords();
    const numMatch = /^(\d+(?:[.,]\d+)*)(%|[a-z]+)?$/.exec(tok);
    if (numMatch) {
      const value = canonicalNumber(numMatch[1]!);
      let suffix = numMatch[2] ?? "";
      if (ORDINAL_SUFFIXES.has(suffix)) suffix = "";
      // "10 k" == "10k", "5 pm" == "5pm": a short unit written apart still belongs to the number.
      if (suffix === "" && next && UNIT_SUFFIXES.has(next)) suffix = next;
      if (suffix === "%" || (suffix === "" && next === "percent")) facts.push(`pct:${value}`);
      else facts.push(`n:${value}${suffix}`);
      const unit = next && has(TIME_UNITS, next) ? TIME_UNITS[next] : undefined;
      if (unit) facts.push(`unit:${unit}`);
      continue;
    }
    if (has(MONTHS, tok)) {
      const nearNumber = isNumberToken(prev) || isNumberToken(next) || (prev === "of" && isNumberToken(clean[i - 2]));
      if (!AMBIGUOUS_MONTHS.has(tok) || nearNumber) facts.push(`month:${MONTHS[tok]}`);
      continue;
    }
    if (has(CURRENCY_WORDS, tok)) {
      facts.push(`cur:${CURRENCY_WORDS[tok]}`);
      continue;
    }
    if (has(TIME_UNITS, tok) && (isNumberToken(prev) || (prev !== undefined && has(SCALE_WORDS, prev)))) {
      // Counted above for digits; here for number words ("two days").
      if (!/^\d/.test(prev ?? "")) facts.push(`unit:${TIME_UNITS[tok]}`);
    }
  }
  flushWords();
  return facts.sort().join("|");
}
