/**
 * The `Idempotency-Key` request header of POST /v1/jobs and POST /v1/bulk (README,
 * "Idempotency-Key"; the header follows the IETF draft "The Idempotency-Key HTTP Header Field",
 * https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/).
 */
import type { Request, Response } from "express";
import { HttpError } from "@sieve/shared";
import type { IdempotencyRow, IdempotentRoute } from "@sieve/shared/db/ops/idempotency";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/** Set on an answer that replays the first request's job instead of creating one. */
export const REPLAYED_HEADER = "Idempotent-Replayed";
/** Longest key, in characters (a UUID is 36). */
export const MAX_KEY_LENGTH = 255;

/** The request's key, validated (400 naming the header), or undefined when it sent none. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const raw = req.headers["idempotency-key"];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw.join(", ") : raw;
  const bad = (message: string) => new HttpError(400, "invalid_request", `${IDEMPOTENCY_HEADER}: ${message}`, [{ field: IDEMPOTENCY_HEADER, message }]);
  if (key.length === 0) throw bad("must not be empty");
  if (key.length > MAX_KEY_LENGTH) throw bad(`at most ${MAX_KEY_LENGTH} characters`);
  if (!/^[\x20-\x7E]+$/.test(key)) throw bad("printable ASCII characters only");
  return key;
}

/**
 * What a request with an already used key gets: nothing when the key names the same request
 * (the caller replays the job), a 422 when it named another body or route, a 409 while the first
 * bulk upload with the key is still arriving.
 */
export function checkReplay(prior: IdempotencyRow, route: IdempotentRoute, requestHash: string): void {
  if (prior.requestHash === null) {
    throw new HttpError(409, "idempotency_in_progress", `${IDEMPOTENCY_HEADER}: a request with this key is still being received; retry when it has finished`, [
      { field: IDEMPOTENCY_HEADER, message: "in progress" },
    ]);
  }
  if (prior.route !== route || prior.requestHash !== requestHash) {
    throw new HttpError(422, "idempotency_key_reused", `${IDEMPOTENCY_HEADER}: already used for a different request (job ${prior.jobId}); use a new key for a new request`, [
      { field: IDEMPOTENCY_HEADER, message: "reused with a different body" },
    ]);
  }
}

export function markReplayed(res: Response): void {
  res.setHeader(REPLAYED_HEADER, "true");
}
