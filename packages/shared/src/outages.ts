/**
 * Outages of Redis and Postgres are weather (docs/operations.md#outages): every process survives
 * them, backs off, logs ONE line when a dependency goes away and one when it is back, shows the
 * state in `sieve_dependency_up`, and resumes by itself.
 *
 * - `classifyInfraError` decides, in one place, whether an error means "a dependency is not
 *   reachable" (connection refused/reset, pool timeouts, ioredis giving up on a command, a closed
 *   connection, Postgres shutting down or refusing connections) as opposed to a bug or a bad input.
 * - `DependencyMonitor` keeps the up/down state per dependency for one process role. Components
 *   report failures; a probe (a ping with a timeout, retried with back-off) is the only thing
 *   that declares a dependency up again, so a flapping component cannot flood the log.
 */
import type { EventEmitter } from "node:events";
import { Counter, Gauge } from "prom-client";
import { coerceError } from "./errors.js";
import type { Logger } from "./logger.js";
import { registry } from "./metrics.js";

export type Dependency = "postgres" | "redis";
export const DEPENDENCIES: readonly Dependency[] = ["postgres", "redis"];

/** A dependency was unreachable: callers (routes) turn this into 503 + Retry-After. */
export class DependencyUnavailableError extends Error {
  readonly dependency: Dependency | "unknown";
  constructor(dependency: Dependency | "unknown", message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "DependencyUnavailableError";
    this.dependency = dependency;
  }
}

/** Socket-level failures: the peer is down, restarting or unreachable. */
const NET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTCONN"]);

/**
 * Postgres SQLSTATEs that mean "the server cannot serve you right now", not "your statement is
 * wrong" (https://www.postgresql.org/docs/15/errcodes-appendix.html): class 08 (connection
 * exception), 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53300
 * too_many_connections, 25P03 idle_in_transaction_session_timeout (the server ended a session of
 * ours that went silent mid-transaction, e.g. while this host was cut off: the transaction was
 * rolled back, so the whole idempotent write is retried on a new connection;
 * docs/operations.md#a-host-cut-off-mid-transaction). 40001/40P01 are NOT here (a retry of the
 * statement is the fix, not an outage).
 */
function isPgUnavailableCode(code: string): boolean {
  return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300" || code === "25P03";
}

/** Messages without a code, from node-postgres and ioredis. */
const PG_MESSAGES = [/timeout exceeded when trying to connect/i, /Connection terminated/i, /Client has encountered a connection error/i, /Cannot use a pool after calling end/i];
const REDIS_MESSAGES = [/Connection is closed/i, /Stream isn't writeable/i, /Reached the max retries per request limit/i, /max retries per request/i, /READONLY You can't write against a read only replica/i, /LOADING Redis is loading/i, /Command timed out/i];

/** drizzle's DrizzleQueryError (its `name` is plain "Error"): the failed statement and its parameters. */
function isDrizzleQueryError(x: Error): boolean {
  const q = x as { query?: unknown; params?: unknown };
  return x.name === "DrizzleQueryError" || (typeof q.query === "string" && Array.isArray(q.params));
}

function chain(e: unknown): Error[] {
  const out: Error[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur !== undefined && cur !== null; i++) {
    // The raw error, not coerceError's: that one hides a database error's code behind a summary.
    const err = cur instanceof Error ? cur : coerceError(cur);
    out.push(err);
    cur = (err as { cause?: unknown }).cause;
  }
  return out;
}

/** Where the dependencies listen, so a bare socket error (no library frame in its stack) can be told apart. */
export interface DependencyPorts {
  postgres?: number;
  redis?: number;
}

/** The ports of DATABASE_URL and REDIS_URL (defaults 5432 and 6379). */
export function dependencyPorts(urls: { postgres?: string | undefined; redis?: string | undefined }): DependencyPorts {
  const port = (u: string | undefined, def: number) => {
    if (!u) return undefined;
    try {
      return Number(new URL(u).port || def);
    } catch {
      return def;
    }
  };
  const out: DependencyPorts = {};
  const pg = port(urls.postgres, 5432);
  const rd = port(urls.redis, 6379);
  if (pg !== undefined) out.postgres = pg;
  if (rd !== undefined) out.redis = rd;
  return out;
}

/**
 * Which dependency, if any, an error says is unreachable. Walks the `cause` chain (drizzle wraps
 * the driver's error in a DrizzleQueryError). `undefined`: not an infrastructure failure (a bug,
 * a bad input, or a provider's trouble, which has its own handling). "unknown": a socket failure
 * that names neither dependency.
 */
export function classifyInfraError(e: unknown, ports: DependencyPorts = {}): Dependency | "unknown" | undefined {
  const errs = chain(e);
  // Provider failures carry their socket error as a cause: they are not our outage.
  if (errs.some((x) => x.name === "ProviderError" || /^API(Connection|ConnectionTimeout|User)?(Error|Abort)/.test(x.name))) return undefined;
  const viaPg = errs.some((x) => isDrizzleQueryError(x) || /node_modules[\\/](pg|pg-pool)[\\/]/.test(x.stack ?? ""));
  const viaRedis = errs.some((x) => /node_modules[\\/](ioredis|bullmq)[\\/]/.test(x.stack ?? ""));
  for (const err of errs) {
    if (err instanceof DependencyUnavailableError) return err.dependency;
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && isPgUnavailableCode(code)) return "postgres";
    if (err.name === "MaxRetriesPerRequestError" || REDIS_MESSAGES.some((re) => re.test(err.message))) return "redis";
    if (PG_MESSAGES.some((re) => re.test(err.message))) return "postgres";
    if (typeof code === "string" && NET_CODES.has(code)) {
      const port = (err as { port?: unknown }).port;
      if (port !== undefined && port === (ports.postgres ?? 5432)) return "postgres";
      if (port !== undefined && port === (ports.redis ?? 6379)) return "redis";
      if (viaPg) return "postgres";
      if (viaRedis) return "redis";
      return "unknown";
    }
    // AggregateError from a dual-stack connect: every attempt failed.
    const inner = (err as { errors?: unknown[] }).errors;
    if (Array.isArray(inner) && inner.length > 0) {
      const deps = inner.map((x) => classifyInfraError(x, ports));
      if (deps.every((x) => x !== undefined)) return deps.find((x) => x !== "unknown") ?? (viaPg ? "postgres" : viaRedis ? "redis" : "unknown");
    }
  }
  return undefined;
}

/**
 * A message to log for an error without the failed statement's parameters (drizzle puts them,
 * item texts included, into its DrizzleQueryError message): the driver's own message instead.
 */
export function safeErrorMessage(e: unknown): string {
  const errs = chain(e);
  const i = errs.findIndex(isDrizzleQueryError);
  if (i === -1) return errs[0]?.message ?? "unknown error";
  return errs[i + 1]?.message ?? "database query failed";
}

/** Seconds a client should wait before retrying a request refused during an outage. */
export const OUTAGE_RETRY_AFTER_S = 5;

const up = new Gauge({ name: "sieve_dependency_up", help: "1 when the dependency answers, 0 during an outage (per process role)", labelNames: ["role", "dependency"], registers: [registry] });
const outages = new Counter({ name: "sieve_dependency_outages_total", help: "Outages of a dependency seen by this process", labelNames: ["role", "dependency"], registers: [registry] });

export interface DependencyMonitorOptions {
  /** "api" or "workers": a label of the metrics and of the log lines. */
  role: string;
  log: Logger;
  /** Ports of the dependencies (see dependencyPorts), to attribute bare socket errors. */
  ports?: DependencyPorts;
  /** One probe per dependency: resolves when the dependency answers. Given a timeout by the monitor. */
  probes: Partial<Record<Dependency, () => Promise<unknown>>>;
  /** First probe delay after a failure, in ms (doubles up to maxProbeMs). @defaultValue 500 */
  probeMs?: number;
  /** Longest probe delay, in ms. @defaultValue 5000 */
  maxProbeMs?: number;
  /** A probe that takes longer than this counts as failed, in ms. @defaultValue 3000 */
  probeTimeoutMs?: number;
  /**
   * While a dependency is up, probe it this often anyway, so an idle process (one blocked on an
   * empty queue) still shows an outage on /readyz and in metrics, in ms; 0 = only on failures.
   * @defaultValue 5000
   */
  checkEveryMs?: number;
}

interface State {
  up: boolean;
  since: number;
  timer?: NodeJS.Timeout;
  waiters: Array<() => void>;
  lastErr?: string;
}

export class DependencyMonitor {
  private readonly state = new Map<Dependency, State>();
  private closed = false;
  private readonly ticker?: NodeJS.Timeout;

  constructor(private readonly opts: DependencyMonitorOptions) {
    for (const d of DEPENDENCIES) {
      if (!opts.probes[d]) continue;
      this.state.set(d, { up: true, since: Date.now(), waiters: [] });
      up.set({ role: opts.role, dependency: d }, 1);
    }
    const every = opts.checkEveryMs ?? 5_000;
    if (every > 0) {
      this.ticker = setInterval(() => {
        for (const d of this.state.keys()) void this.check(d, "health check", new Error("health check failed"));
      }, every);
    }
  }

  isUp(dep: Dependency): boolean {
    return this.state.get(dep)?.up ?? true;
  }

  /** Every dependency's state, for /readyz. */
  snapshot(): Record<string, "ok" | "unreachable"> {
    const out: Record<string, "ok" | "unreachable"> = {};
    for (const [d, s] of this.state) out[d] = s.up ? "ok" : "unreachable";
    return out;
  }

  /**
   * Reports an error. Returns the dependency when it is an infrastructure failure (the first one
   * of an outage logs one line and starts probing); `undefined` when it is not one.
   */
  report(e: unknown, component: string): Dependency | "unknown" | undefined {
    const dep = classifyInfraError(e, this.opts.ports);
    if (dep === undefined) return undefined;
    if (dep === "unknown") {
      // Cannot tell which one: probe both; only the one whose probe fails is marked down.
      for (const d of this.state.keys()) void this.check(d, component, e);
      return dep;
    }
    this.markDown(dep, component, e);
    return dep;
  }

  /** A failure seen by a component for a dependency it knows (e.g. a readiness ping). */
  markDown(dep: Dependency, component: string, e: unknown): void {
    const s = this.state.get(dep);
    if (!s || this.closed) return;
    s.lastErr = safeErrorMessage(e);
    if (!s.up) return;
    s.up = false;
    s.since = Date.now();
    up.set({ role: this.opts.role, dependency: dep }, 0);
    outages.inc({ role: this.opts.role, dependency: dep });
    const code = chain(e).map((x) => (x as { code?: unknown }).code).find((c) => typeof c === "string");
    this.opts.log.warn({ dependency: dep, component, err: safeErrorMessage(e), ...(code ? { code } : {}) }, `${dep} unreachable: backing off until it answers again`);
    this.schedule(dep, this.opts.probeMs ?? 500);
  }

  /** Resolves when the dependency is up (at once if it is), or after `maxMs`. */
  waitUp(dep: Dependency, maxMs = 30_000): Promise<void> {
    const s = this.state.get(dep);
    if (!s || s.up || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, maxMs);
      function done() {
        clearTimeout(t);
        resolve();
      }
      s.waiters.push(done);
    });
  }

  /** Routes an emitter's 'error' events (ioredis, BullMQ Queue/Worker/QueueEvents) here, as JSON log lines. */
  watch(emitter: Pick<EventEmitter, "on">, component: string): void {
    emitter.on("error", (e: unknown) => {
      if (this.report(e, component) === undefined) this.opts.log.warn({ component, err: safeErrorMessage(e) }, "connection error");
    });
  }

  private async check(dep: Dependency, component: string, e: unknown): Promise<void> {
    const s = this.state.get(dep);
    if (!s || !s.up) return;
    if (!(await this.probe(dep))) this.markDown(dep, component, s.lastErr ? new Error(s.lastErr) : e);
  }

  private async probe(dep: Dependency): Promise<boolean> {
    const fn = this.opts.probes[dep];
    if (!fn) return true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("probe timed out")), this.opts.probeTimeoutMs ?? 3_000);
        }),
      ]);
      return true;
    } catch (err) {
      const s = this.state.get(dep);
      if (s) s.lastErr = coerceError(err).message;
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private schedule(dep: Dependency, delay: number): void {
    const s = this.state.get(dep)!;
    if (this.closed) return;
    s.timer = setTimeout(async () => {
      s.timer = undefined;
      if (this.closed) return;
      if (await this.probe(dep)) {
        if (this.closed) return;
        const downMs = Date.now() - s.since;
        s.up = true;
        s.since = Date.now();
        up.set({ role: this.opts.role, dependency: dep }, 1);
        this.opts.log.info({ dependency: dep, downMs }, `${dep} reachable again: resuming`);
        for (const w of s.waiters.splice(0)) w();
        return;
      }
      this.schedule(dep, Math.min(delay * 2, this.opts.maxProbeMs ?? 5_000));
    }, delay);
  }

  close(): void {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const s of this.state.values()) {
      if (s.timer) clearTimeout(s.timer);
      for (const w of s.waiters.splice(0)) w();
    }
  }
}
