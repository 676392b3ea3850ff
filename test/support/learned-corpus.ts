/**
 * A small two-label support corpus for the learned-cache suites: 16 base requests ("billing" or
 * "technical"), each in 10 variants by suffix. `corpus(from, to)` takes the variants from..to-1,
 * every base text once per variant, billing first.
 */
export const LEARNED_LABELS = ["billing", "technical"];

/**
 * The server settings the corpus is sized for: warm after 40 labels, a loose 20% bound so that a
 * few dozen calibration points certify, and no packed-answer re-checks adding calls of their own.
 */
export const LEARNED_ENV = {
  SIEVE_LEARNED_CACHE: "true",
  SIEVE_LEARNED_MIN_EXAMPLES: "40",
  SIEVE_LEARNED_MAX_ERROR: "0.2",
  SIEVE_RECHECK_RATE: "0",
} as const;
const billing = ["I was charged twice for my subscription", "My invoice shows the wrong amount", "Please refund the double payment on my card", "Why did my monthly bill go up", "The payment was taken but the order says unpaid", "I need a copy of last month's receipt", "You billed me after I cancelled my plan", "My credit card was charged an unknown fee"];
const technical = ["The app crashes when I open the settings page", "I cannot log in, the password reset email never arrives", "The website shows a blank screen after the update", "Uploading a photo fails with an error", "Notifications stopped working on my phone", "The sync between my laptop and phone is broken", "The page freezes when I click save", "Two-factor codes are rejected as invalid"];
const suffixes = ["", " today", " again", " since Monday", " this week", " for the third time", ", please help", " and I am annoyed", " yesterday evening", " on my account"];

export function corpus(from: number, to: number): Array<{ text: string; label: string }> {
  const out: Array<{ text: string; label: string }> = [];
  for (let s = from; s < to; s++) {
    for (const t of billing) out.push({ text: `${t}${suffixes[s]}`, label: "billing" });
    for (const t of technical) out.push({ text: `${t}${suffixes[s]}`, label: "technical" });
  }
  return out;
}
