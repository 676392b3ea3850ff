/**
 * Fault injection: which faults a request draws (seeded, so a test sees the same sequence every
 * run) and the pure transforms that damage an otherwise valid answer. The server applies them;
 * nothing here does I/O.
 */
import { z } from "zod";

const Rate = z.number().min(0).max(1);
const NonNegative = z.number().min(0);

/**
 * The fault knobs. Rates are probabilities 0..1 drawn independently per generation request
 * (chat completions / messages); control, models, health and metrics routes never fail.
 */
export const SimulatorFaults = z
  .object({
    /** Added to every generation request before it answers, in ms. @defaultValue 0 */
    latencyMs: NonNegative.optional(),
    /** Uniform random extra latency 0..latencyJitterMs, in ms. @defaultValue 0 */
    latencyJitterMs: NonNegative.optional(),
    /** Probability of a 429 rate-limit error. @defaultValue 0 */
    rate429: Rate.optional(),
    /** `retry-after` sent with an injected 429, in seconds. @defaultValue 1 */
    retryAfterS: NonNegative.optional(),
    /** Probability of a server error: 500 (OpenAI, vLLM) or 529 overloaded (Anthropic). @defaultValue 0 */
    rate5xx: Rate.optional(),
    /** Probability that the request is never answered: the connection stays open until the client aborts. @defaultValue 0 */
    rateTimeout: Rate.optional(),
    /** Probability that the JSON answer is cut in half (finish_reason "length" / stop_reason "max_tokens"). @defaultValue 0 */
    rateTruncated: Rate.optional(),
    /** Probability that one entry is dropped from the results. @defaultValue 0 */
    rateDropItem: Rate.optional(),
    /** Probability that one entry appears twice in the results. @defaultValue 0 */
    rateDuplicateItem: Rate.optional(),
    /** Probability that one entry gets an invalid value (label outside the enum, empty translation). @defaultValue 0 */
    rateBadValue: Rate.optional(),
    /**
     * OpenAI `service_tier: "flex"` only: probability of a 429 "resource unavailable" (flex capacity
     * is best-effort; https://platform.openai.com/docs/guides/flex-processing). @defaultValue 0
     */
    flexRate429: Rate.optional(),
    /** OpenAI `service_tier: "flex"` only: extra latency of every flex request, in ms (flex is slower). @defaultValue 0 */
    flexLatencyMs: NonNegative.optional(),
    /** Seed of the fault PRNG; setting faults with a seed restarts the sequence. @defaultValue random */
    seed: z.number().int().optional(),
  })
  .strict();
export type SimulatorFaults = z.infer<typeof SimulatorFaults>;

/** Marker: an item whose text contains it is never answered (its entry is always omitted). */
export const POISON_MARKER = "SIM_POISON";

export type Rng = () => number;

/** mulberry32: tiny, fast, good enough for fault dice; reproducible from a 32-bit seed. */
export function createRng(seed: number = Math.floor(Math.random() * 2 ** 32)): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What goes wrong with the request itself (before any answer exists). */
export type RequestFault = { kind: "timeout" } | { kind: "rate_limited"; retryAfterS: number } | { kind: "server" };

export interface FaultPlan {
  /** Delay before answering, in ms. */
  latencyMs: number;
  request: RequestFault | undefined;
  truncate: boolean;
  drop: boolean;
  duplicate: boolean;
  badValue: boolean;
  /** Uniform 0..1 draws used to pick which entry a drop/duplicate/bad-value hits. */
  picks: { drop: number; duplicate: number; badValue: number };
}

/**
 * Draws every die in a fixed order, whatever the outcome, so one request's result never shifts
 * the sequence seen by the next (reproducible runs with a seed).
 */
export function planFaults(f: SimulatorFaults, rng: Rng): FaultPlan {
  const jitter = rng();
  const timeout = rng() < (f.rateTimeout ?? 0);
  const r429 = rng() < (f.rate429 ?? 0);
  const r5xx = rng() < (f.rate5xx ?? 0);
  const truncate = rng() < (f.rateTruncated ?? 0);
  const drop = rng() < (f.rateDropItem ?? 0);
  const duplicate = rng() < (f.rateDuplicateItem ?? 0);
  const badValue = rng() < (f.rateBadValue ?? 0);
  const picks = { drop: rng(), duplicate: rng(), badValue: rng() };
  const request: RequestFault | undefined = timeout
    ? { kind: "timeout" }
    : r429
      ? { kind: "rate_limited", retryAfterS: f.retryAfterS ?? 1 }
      : r5xx
        ? { kind: "server" }
        : undefined;
  return {
    latencyMs: (f.latencyMs ?? 0) + jitter * (f.latencyJitterMs ?? 0),
    request,
    truncate,
    drop,
    duplicate,
    badValue,
    picks,
  };
}

/** Where the per-item entries sit inside an answer, and the schema of one entry. */
export interface EntriesLocation {
  /** Property path from the answer's root to the entries array, e.g. ["results"]. */
  path: ReadonlyArray<string | number>;
  /** The resolved schema of one entry (used to pick an invalid value). */
  entrySchema: Record<string, unknown>;
}

export interface AppliedItemFaults {
  value: unknown;
  poisoned: number;
  dropped: number;
  duplicated: number;
  badValues: number;
}

function getAt(root: unknown, path: ReadonlyArray<string | number>): unknown {
  let cur: unknown = root;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function pickIndex(n: number, u: number): number {
  return Math.min(n - 1, Math.floor(u * n));
}

/** A value the entry's schema rejects: a label outside the enum, an empty string, a wrong type. */
export function invalidValueFor(schema: unknown): unknown {
  const s = (schema ?? {}) as Record<string, unknown>;
  if (Array.isArray(s.enum)) return "__sim_not_in_enum__";
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === "string") return "";
  if (type === "number" || type === "integer") return "not-a-number";
  return null;
}

/**
 * Damages the entries of an answer (never mutates the input): poison items are removed, then
 * the planned drop / duplicate / bad value are applied to the surviving entries.
 */
export function applyItemFaults(
  value: unknown,
  where: EntriesLocation | undefined,
  poisonIds: ReadonlySet<string>,
  plan: Pick<FaultPlan, "drop" | "duplicate" | "badValue" | "picks">,
): AppliedItemFaults {
  const out: AppliedItemFaults = { value, poisoned: 0, dropped: 0, duplicated: 0, badValues: 0 };
  if (!where) return out;
  const copy = structuredClone(value);
  const entries = getAt(copy, where.path);
  if (!Array.isArray(entries)) return out;
  out.value = copy;
  for (let i = entries.length - 1; i >= 0; i--) {
    const id = (entries[i] as { id?: unknown } | null)?.id;
    if (typeof id === "string" && poisonIds.has(id)) {
      entries.splice(i, 1);
      out.poisoned++;
    }
  }
  if (plan.drop && entries.length > 0) {
    entries.splice(pickIndex(entries.length, plan.picks.drop), 1);
    out.dropped = 1;
  }
  if (plan.badValue && entries.length > 0) {
    const entry = entries[pickIndex(entries.length, plan.picks.badValue)] as Record<string, unknown>;
    const props = (where.entrySchema.properties ?? {}) as Record<string, unknown>;
    const key = Object.keys(props).find((k) => k !== "id");
    if (key !== undefined) {
      entry[key] = invalidValueFor(props[key]);
      out.badValues = 1;
    }
  }
  if (plan.duplicate && entries.length > 0) {
    const entry = entries[pickIndex(entries.length, plan.picks.duplicate)];
    entries.push(structuredClone(entry));
    out.duplicated = 1;
  }
  return out;
}

/** Cuts a JSON text in half: never parseable (an object or array loses its closing bracket). */
export function truncateText(text: string): string {
  return text.slice(0, Math.floor(text.length / 2));
}
