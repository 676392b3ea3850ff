/** Helpers shared by the OpenAI and Anthropic batch simulations. */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { header } from "../http.js";
import type { Rng } from "../faults.js";

export function newBatchId(prefix: string): string {
  return prefix + randomUUID().replace(/-/g, "").slice(0, 24);
}

/** Fisher-Yates with the batch PRNG. Never returns the input order when there are 2+ entries. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  // Providers never promise input order (docs/providers.md): make sure a test that relies on it fails.
  if (out.length > 1 && out.every((v, i) => v === items[i])) out.push(out.shift()!);
  return out;
}

/** A JSONL line that is not valid JSON (cut in half, as a broken write would leave it). */
export function corruptLine(line: string): string {
  return line.slice(0, Math.max(1, Math.floor(line.length / 2)));
}

/** Lets other requests run during a long materialisation (answering 50,000 requests). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `http://host:port` as the client reached us (Anthropic's `results_url` is absolute). */
export function originOf(req: IncomingMessage): string {
  return `http://${header(req, "host") ?? "127.0.0.1"}`;
}

/** `limit` query parameter: 1..100, default 20 (both providers' list endpoints). */
export function listLimit(url: URL): number {
  const raw = url.searchParams.get("limit");
  if (raw === null) return 20;
  const n = Number(raw);
  return Number.isInteger(n) ? Math.min(100, Math.max(1, n)) : 20;
}

/** Seconds since epoch. */
export const seconds = (ms: number): number => Math.floor(ms / 1000);
