/**
 * Where the domain's refusals (errors.ts) become HTTP answers: rejected input 400, an unmeetable
 * deadline 422, unavailable 503 (the app's error handler adds Retry-After to every 503).
 */
import { HttpError } from "@sieve/shared";
import { AcceptError, DeadlineUnmeetable, RejectedInput } from "../errors.js";

/** The HTTP form of a domain error; any other value is passed on unchanged. */
export function asHttp(e: unknown): unknown {
  if (!(e instanceof AcceptError)) return e;
  const status = e instanceof RejectedInput ? 400 : e instanceof DeadlineUnmeetable ? 422 : 503;
  return new HttpError(status, e.code, e.message, e.details);
}
