/**
 * The maxItems controller of one batch key (docs/quality.md, "Packed answers checked live").
 *
 * Input: re-check outcomes (did the packed answer agree with the same item asked alone?) of
 * calls made under the current limit. Output: the batch key's maxItems.
 *
 * - Lower: once `minSamples` outcomes at the current limit show agreement under `floor`, the
 *   limit is halved (not below `minItems`).
 * - Raise: once `minSamples` outcomes at a lowered limit show agreement at or above `recover`
 *   (> floor: hysteresis), the limit is doubled (not above the configured maximum).
 * - Every change starts a new sample window and a cooldown (`cooldownMs`). A limit that was
 *   lowered from is probed again only after cooldownMs * 2^(times it failed): a key whose
 *   agreement only holds at the lower size does not flap.
 *
 * Pure: state in, state out, the clock passed in (tests use a fake one); persisted by limits.ts.
 */

export interface ControllerConfig {
  /** The configured maxItems of the task (SIEVE_*_MAX_ITEMS): the ceiling. */
  ceiling: number;
  /** Lowest limit the controller may set. @defaultValue 1 */
  minItems?: number;
  floor: number;
  recover: number;
  minSamples: number;
  cooldownMs: number;
}

export interface ControllerState {
  maxItems: number;
  /** Outcomes since the last change. */
  agreed: number;
  total: number;
  /** When the limit last changed (ms since epoch); 0 = never. */
  changedAt: number;
  /** Per limit: how many times agreement fell under the floor there. */
  failures: Record<string, number>;
}

export type ControllerEvent = "lowered" | "raised" | undefined;

export function initialState(cfg: ControllerConfig): ControllerState {
  return { maxItems: cfg.ceiling, agreed: 0, total: 0, changedAt: 0, failures: {} };
}

/**
 * Adds re-check outcomes of a call that carried `callItems` items and decides. Outcomes of calls
 * bigger than the current limit (sent before a lowering) are ignored: they describe the old limit.
 */
export function observe(
  cfg: ControllerConfig,
  state: ControllerState,
  outcome: { agreed: number; total: number; callItems: number },
  now: number,
): { state: ControllerState; event: ControllerEvent } {
  const minItems = Math.max(1, cfg.minItems ?? 1);
  // The ceiling may have been lowered by configuration since the state was saved.
  let s: ControllerState = { ...state, maxItems: Math.min(state.maxItems, cfg.ceiling), failures: { ...state.failures } };
  if (outcome.callItems > s.maxItems) return { state: s, event: undefined };
  s.agreed += outcome.agreed;
  s.total += outcome.total;
  if (s.total < cfg.minSamples) return { state: s, event: undefined };
  const agreement = s.agreed / s.total;
  const cooled = now - s.changedAt >= cfg.cooldownMs;
  if (agreement < cfg.floor && s.maxItems > minItems && cooled) {
    const from = s.maxItems;
    s.failures[String(from)] = (s.failures[String(from)] ?? 0) + 1;
    s = { ...s, maxItems: Math.max(minItems, Math.floor(from / 2)), agreed: 0, total: 0, changedAt: now };
    return { state: s, event: "lowered" };
  }
  if (agreement >= cfg.recover && s.maxItems < cfg.ceiling) {
    const to = Math.min(cfg.ceiling, s.maxItems * 2);
    const backoff = cfg.cooldownMs * 2 ** (s.failures[String(to)] ?? 0);
    if (now - s.changedAt >= backoff) {
      s = { ...s, maxItems: to, agreed: 0, total: 0, changedAt: now };
      return { state: s, event: "raised" };
    }
  }
  // Between floor and recover (or waiting for a cooldown): keep sampling; a sliding window keeps
  // old outcomes from outweighing new ones.
  if (s.total > cfg.minSamples * 4) {
    const keep = (cfg.minSamples * 2) / s.total;
    s = { ...s, agreed: Math.round(s.agreed * keep), total: cfg.minSamples * 2 };
  }
  return { state: s, event: undefined };
}

/** Whether an item answered in a call of `callItems` items is re-checked (rate 0..1, `rand` in [0,1)). */
export function sampleForRecheck(callItems: number, rate: number, rand: () => number = Math.random): boolean {
  return callItems > 1 && rate > 0 && rand() < rate;
}
