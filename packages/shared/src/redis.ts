import { Redis, type RedisOptions } from "ioredis";

/**
 * Producer-side connections fail fast (a request should get a 503, not hang);
 * worker connections retry forever (BullMQ requires maxRetriesPerRequest: null).
 */
export function createRedis(url: string, role: "producer" | "worker" | "subscriber"): Redis {
  const opts: RedisOptions =
    role === "producer"
      ? // A command gives up after one failed reconnect, or after 5 s without an answer (a Redis
        // that accepts connections but hangs): the request gets a 503, never a hang.
        { maxRetriesPerRequest: 1, connectTimeout: 5_000, commandTimeout: 5_000 }
      : { maxRetriesPerRequest: null, enableReadyCheck: true };
  const r = new Redis(url, opts);
  // Errors surface through the commands that fail; an unhandled 'error' event would crash the process.
  r.on("error", () => {});
  return r;
}
