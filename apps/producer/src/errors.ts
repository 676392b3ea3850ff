/**
 * Why a submission was not accepted, in the domain's terms. `acceptJob` and everything under it
 * throw these; only the HTTP routes turn them into status codes (routes/httpErrors.ts), and the
 * inbox files an unusable file with the same code, message and details.
 */

export type AcceptErrorDetails = Record<string, unknown> | Array<Record<string, unknown>>;

export abstract class AcceptError extends Error {
  readonly code: string;
  readonly details: AcceptErrorDetails | undefined;
  constructor(code: string, message: string, details?: AcceptErrorDetails) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** `{ code, message, details? }`: the error object of an HTTP answer and of an inbox report. */
  describe(): { code: string; message: string; details?: AcceptErrorDetails } {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** The submission itself is wrong (a field, a header line, no valid item): sent again, it fails the same way. */
export class RejectedInput extends AcceptError {
  constructor(message: string, details?: AcceptErrorDetails, code = "invalid_request") {
    super(code, message, details);
    this.name = "RejectedInput";
  }
}

/** The submission is valid but no lane can answer it by its deadline; nothing was stored. */
export class DeadlineUnmeetable extends AcceptError {
  constructor(message: string, details?: AcceptErrorDetails) {
    super("deadline_unmeetable", message, details);
    this.name = "DeadlineUnmeetable";
  }
}

/** Something the submission needs is missing or down (a provider's queue, Redis); nothing was accepted, retry later. */
export class Unavailable extends AcceptError {
  constructor(message: string) {
    super("unavailable", message);
    this.name = "Unavailable";
  }
}
