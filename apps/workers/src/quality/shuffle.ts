/**
 * Items are shuffled within a call: a model's answer can depend on an item's position in the
 * prompt (Lin et al., "BatchPrompt: Accomplish more with less", ICLR 2024,
 * https://arxiv.org/abs/2309.00384), so no item keeps the worst position call after call because
 * of the order it arrived in. Answers are mapped back by the call-local id (docs/quality.md).
 */

/** Fisher-Yates, in place; `rand` returns [0, 1). */
export function shuffleInPlace<T>(a: T[], rand: () => number = Math.random): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
