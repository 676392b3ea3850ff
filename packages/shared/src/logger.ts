import { pino, type Logger, type LoggerOptions } from "pino";

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

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    hooks: {
      logMethod(args, method) {
        // Scrub secrets from the message string itself (a provider error message may echo a key).
        const scrubbed = args.map((a) => (typeof a === "string" ? scrubSecrets(a) : a));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
    ...(opts.name ? { name: opts.name } : {}),
  };
  return opts.destination ? pino(options, opts.destination as pino.DestinationStream) : pino(options);
}
