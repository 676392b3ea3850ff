/**
 * The chaos bench's clients: 25 of them submit classify jobs on a schedule and retry each one, with
 * the same `Idempotency-Key`, until it is accepted (bounded in attempts and time), the way a
 * careful client would: after Retry-After on 429/503, with back-off on other 5xx and on connection
 * errors. Every loop is bounded in count and time.
 */
import { randomUUID } from "node:crypto";
import { sleep } from "../../test/support/children.js";
import { createRng } from "@sieve/simulator/faults";

export interface Submission {
  key: string;
  /** When to send it, ms after the load starts. */
  atMs: number;
  items: Array<{ id: string; text: string }>;
  /** `?wait=` long-poll, e.g. "20s". */
  wait?: string;
}

export interface Outcome {
  jobId?: string;
  /** Every distinct job id the API answered for this key (more than one: the key did not hold). */
  jobIds: Set<string>;
  attempts: number;
  gaveUp?: string;
}

export interface LoadStats {
  outcomes: Map<string, Outcome>;
  statuses: Record<string, number>;
  /** 5xx other than 503 (a 503 with Retry-After is the promised answer to an outage). */
  http500: number;
  connErrors: number;
  /** Answers with no job id where one was due (a 2xx without `id`). */
  noId: number;
}

const LABELS = ["World", "Sports", "Business", "Sci/Tech"];

/** The simulator's seeded PRNG (mulberry32), so a run's schedule can be reproduced. */
export function rng(seed: number): () => number {
  return createRng(seed);
}

/**
 * `count` items from `texts` starting at `offset`, about 10% of them repeating a text already used
 * in this plan, cut into submissions of 10..60 items spread over `windowMs`.
 */
export function planSubmissions(
  texts: string[],
  opts: { count: number; offset: number; windowMs: number; tag: string; seed: number; waitShare: number; wait: string; burstShare?: number },
): Submission[] {
  const r = rng(opts.seed);
  const used: string[] = [];
  const items: Array<{ id: string; text: string }> = [];
  let next = opts.offset;
  for (let i = 0; i < opts.count; i++) {
    let text: string;
    if (used.length > 20 && r() < 0.1) text = used[Math.floor(r() * used.length)]!;
    else {
      text = texts[next % texts.length]!;
      next++;
      used.push(text);
    }
    items.push({ id: `${opts.tag}-${i}`, text });
  }
  const subs: Submission[] = [];
  for (let i = 0; i < items.length; ) {
    const n = 10 + Math.floor(r() * 51);
    subs.push({ key: randomUUID(), atMs: 0, items: items.slice(i, i + n), ...(r() < opts.waitShare ? { wait: opts.wait } : {}) });
    i += n;
  }
  // A share of the submissions can come as one burst 1.5..0.5 s before the window ends (the
  // fault's moment), so that work is still waiting in the queues when the fault hits.
  const burst = Math.round(subs.length * (opts.burstShare ?? 0));
  const spread = subs.length - burst;
  const spreadMs = burst > 0 ? Math.max(0, opts.windowMs - 1_500) : opts.windowMs;
  subs.forEach((s, i) => {
    s.atMs = i < spread ? Math.floor((i / spread) * spreadMs) : opts.windowMs - 1_500 + Math.floor(((i - spread) / burst) * 1_000);
  });
  return subs;
}

export async function runClients(opts: {
  apiUrl: string;
  apiKey: string;
  submissions: Submission[];
  clients: number;
  /** Give up on a submission this long after its first attempt. */
  perSubmissionMs: number;
  maxAttempts: number;
}): Promise<LoadStats> {
  const stats: LoadStats = { outcomes: new Map(), statuses: {}, http500: 0, connErrors: 0, noId: 0 };
  const queue = [...opts.submissions].sort((a, b) => a.atMs - b.atMs);
  const t0 = Date.now();
  const count = (k: string) => (stats.statuses[k] = (stats.statuses[k] ?? 0) + 1);

  async function submit(s: Submission): Promise<void> {
    const out: Outcome = { jobIds: new Set(), attempts: 0 };
    stats.outcomes.set(s.key, out);
    const deadline = Date.now() + opts.perSubmissionMs;
    let backoff = 500;
    while (out.attempts < opts.maxAttempts && Date.now() < deadline) {
      out.attempts++;
      let delay = backoff;
      try {
        const res = await fetch(`${opts.apiUrl}/v1/jobs${s.wait ? `?wait=${s.wait}` : ""}`, {
          method: "POST",
          headers: { authorization: `Bearer ${opts.apiKey}`, "content-type": "application/json", "idempotency-key": s.key },
          body: JSON.stringify({ task: "classify", labels: LABELS, items: s.items }),
          signal: AbortSignal.timeout(60_000),
        });
        count(String(res.status));
        const text = await res.text();
        let body: { id?: unknown } = {};
        try {
          body = JSON.parse(text) as { id?: unknown };
        } catch {
          // not JSON
        }
        if (res.status === 200 || res.status === 202 || res.status === 201) {
          if (typeof body.id === "string") {
            out.jobIds.add(body.id);
            out.jobId ??= body.id;
            return;
          }
          stats.noId++;
        } else if (res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408) {
          out.gaveUp = `HTTP ${res.status}: ${text.slice(0, 200)}`;
          return;
        } else if (res.status >= 500 && res.status !== 503) stats.http500++;
        const ra = Number(res.headers.get("retry-after"));
        if (Number.isFinite(ra) && ra > 0) delay = Math.min(ra * 1_000, 10_000);
      } catch {
        stats.connErrors++;
        count("conn-error");
      }
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      backoff = Math.min(backoff * 2, 5_000);
    }
    out.gaveUp ??= `no answer after ${out.attempts} attempts`;
  }

  await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const wait = s.atMs - (Date.now() - t0);
        if (wait > 0) await sleep(wait);
        await submit(s);
      }
    }),
  );
  return stats;
}
