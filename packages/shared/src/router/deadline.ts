/**
 * Request deadlines: an ISO 8601 duration (`PT10S`, `PT1H30M`, `P1D`, `P1DT12H`) counted from
 * submission, or an ISO 8601 timestamp with a time zone (`2026-12-01T18:00:00Z`).
 * Years and months are refused: their length in seconds is ambiguous (ISO 8601-1:2019 §5.5.2).
 */

const DURATION = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/;

export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeadlineError";
  }
}

/** Milliseconds of an ISO 8601 duration (weeks, days, hours, minutes, seconds), or undefined when it is not one. */
export function parseIsoDuration(s: string): number | undefined {
  const m = DURATION.exec(s.trim().toUpperCase());
  if (!m || s.trim().toUpperCase() === "P" || /T$/.test(s.trim())) return undefined;
  const [, w, d, h, min, sec] = m;
  const n = (x: string | undefined) => (x === undefined ? 0 : Number(x));
  return Math.round(((n(w) * 7 + n(d)) * 86_400 + n(h) * 3_600 + n(min) * 60 + n(sec)) * 1_000);
}

/** The absolute deadline (ms since epoch) of `input`, submitted at `now`. Throws DeadlineError with a message for the caller. */
export function resolveDeadline(input: string, now: number): number {
  const s = input.trim();
  if (/^P/i.test(s)) {
    if (/^P[^T]*[YM]/i.test(s)) throw new DeadlineError("years and months are not allowed in a duration (their length varies); use days, e.g. P30D");
    const ms = parseIsoDuration(s);
    if (ms === undefined) throw new DeadlineError(`"${input}" is not an ISO 8601 duration (e.g. PT10S, PT1H, P1D)`);
    if (ms <= 0) throw new DeadlineError("must be longer than zero");
    return now + ms;
  }
  if (TIMESTAMP.test(s)) {
    const at = Date.parse(s);
    if (Number.isNaN(at)) throw new DeadlineError(`"${input}" is not a valid timestamp`);
    if (at <= now) throw new DeadlineError(`${s} is in the past`);
    return at;
  }
  throw new DeadlineError(`"${input}" is neither an ISO 8601 duration (PT10S, PT1H, P1D) nor a timestamp with a time zone (2026-12-01T18:00:00Z)`);
}
