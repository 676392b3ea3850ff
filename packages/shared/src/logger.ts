import { pino, type Logger, type LoggerOptions } from "pino";
import { coerceError, dbErrorSummary } from "./errors.js";

export type { Logger };

/** Paths redacted in every log line: secrets never reach logs. */
export const REDACT_PATHS = [
  "authorization",
  "Authorization",
  "apiKey",
  "api_key",
  "password",
  "headers.authorization",
  "headers['x-api-key']",
  "req.headers.authorization",
  "req.headers['x-api-key']",
  "*.apiKey",
  "*.password",
  "*.authorization",
];

const SECRET_PATTERNS: RegExp[] = [/sk-[A-Za-z0-9_\-]{6,}/g, /Bearer\s+[A-Za-z0-9._\-]+/gi];

/** Scrubs secret-looking substrings (API keys, bearer tokens) out of a free-text message. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const re of SECRET_PATTERNS) out = out.replace(re, "[redacted]");
  return out;
}

/** Cuts the parameter list drizzle appends to a failed statement's message (item texts). */
function cutParams(text: string): string {
  const at = text.indexOf("\nparams: ");
  return at === -1 ? text : `${text.slice(0, at)} [params omitted]`;
}

/** `err` fields: database errors as a safe summary (dbErrorSummary), other errors as type + message + stack. */
function errSerializer(value: unknown): unknown {
  if (typeof value === "string") return cutParams(value);
  if (!value || typeof value !== "object") return value;
  const e = coerceError(value);
  return dbErrorSummary(value) !== undefined ? { type: e.name, message: e.message } : { type: e.name, message: cutParams(e.message), stack: cutParams(e.stack ?? "") };
}

/** Top-level string fields of a log object, scrubbed of statement parameters. */
function scrubFields(obj: unknown): unknown {
  if (!obj || typeof obj !== "object" || Array.isArray(obj) || obj instanceof Error) return obj;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === "string" && v.includes("\nparams: ")) {
      out ??= { ...(obj as Record<string, unknown>) };
      out[k] = cutParams(v);
    }
  }
  return out ?? obj;
}

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: { err: errSerializer, error: errSerializer },
    hooks: {
      logMethod(args, method) {
        // Scrub secrets from the message string itself (a provider error message may echo a key).
        // Statement parameters (item texts) never reach a log line, whoever logged the error.
        const scrubbed = args.map((a) => (typeof a === "string" ? scrubSecrets(cutParams(a)) : scrubFields(a)));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
    ...(opts.name ? { name: opts.name } : {}),
  };
  return opts.destination ? pino(options, opts.destination as pino.DestinationStream) : pino(options);
}
