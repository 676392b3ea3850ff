/**
 * Our own redis-server and PostgreSQL cluster, for tests and benchmarks that stop, kill or cut them
 * off (the machine's shared services are never touched). Each lives in a temp dir, listens on a
 * free port (optionally inside a network namespace) and also on a Unix socket in that dir, so the
 * process that started it can always reach it, whichever namespace it listens in.
 * `OwnRedis.start()` / `OwnPostgres.create()` are the one-line forms for a test on loopback: a
 * Redis without persistence (a restart comes back EMPTY, as after a failover to a lagging
 * replica) and a fresh cluster, both removed by `destroy()`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { Redis } from "ioredis";
import { spawnTracked, until, type Spawned } from "./children.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export interface OwnRedisOptions {
  dir: string;
  port: number;
  /** Listen address. @defaultValue "127.0.0.1" */
  host?: string;
  /** Append-only file on (the chaos bench's normal case) or no persistence at all. */
  aof: boolean;
  netns?: string;
}

export class OwnRedis {
  proc?: Spawned;
  readonly socket: string;
  constructor(readonly opts: OwnRedisOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.socket = path.join(opts.dir, "redis.sock");
  }
  get url(): string {
    return `redis://${this.opts.host ?? "127.0.0.1"}:${this.opts.port}`;
  }
  /** A started redis-server without persistence, on loopback and a free port. */
  static async start(): Promise<OwnRedis> {
    const r = new OwnRedis({ dir: mkdtempSync(path.join(tmpdir(), "sieve-redis-")), port: await freePort(), aof: false });
    await r.start();
    return r;
  }
  /** Starts the server (again); `aof` overrides the persistence of this start only. */
  async start(aof = this.opts.aof): Promise<void> {
    const args = ["--port", String(this.opts.port), "--bind", this.opts.host ?? "127.0.0.1", "--dir", this.opts.dir, "--unixsocket", this.socket, "--unixsocketperm", "777"];
    args.push("--save", "", "--appendonly", aof ? "yes" : "no", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction", "--protected-mode", "no");
    this.proc = spawnTracked("redis", "redis-server", args, { logFile: path.join(this.opts.dir, "redis.log"), ...(this.opts.netns ? { netns: this.opts.netns } : {}) });
    await until("redis to answer", () => this.ping(), 15_000, 100);
  }
  async ping(): Promise<boolean> {
    const r = new Redis({ path: this.socket, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on("error", () => {});
    try {
      await r.connect();
      return (await r.ping()) === "PONG";
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  }
  /** A client over the Unix socket (works from outside the namespace). */
  client(): Redis {
    const r = new Redis({ path: this.socket, maxRetriesPerRequest: 1 });
    r.on("error", () => {});
    return r;
  }
  async kill(): Promise<void> {
    await this.proc?.kill("SIGKILL");
  }
  /** A clean shutdown (SIGTERM: the AOF is flushed), waited for. */
  async stop(): Promise<void> {
    if (!this.proc?.alive()) return;
    await this.proc.kill("SIGTERM");
    await Promise.race([this.proc.exited, new Promise((r) => setTimeout(r, 10_000))]);
    await this.proc.kill("SIGKILL");
  }
  /** Killed and its directory removed. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.opts.dir, { recursive: true, force: true });
  }
}

export interface OwnPostgresOptions {
  dir: string;
  port: number;
  host?: string;
  netns?: string;
}

/** uid/gid to run Postgres as: the `postgres` user when we are root (it refuses root). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

export class OwnPostgres {
  proc?: Spawned;
  readonly data: string;
  readonly sockets: string;
  private readonly user = postgresUser();
  constructor(readonly opts: OwnPostgresOptions) {
    this.data = path.join(opts.dir, "data");
    this.sockets = path.join(opts.dir, "sock");
  }
  /** Why a cluster cannot be made here, or undefined when it can. */
  static unavailable(): string | undefined {
    const r = spawnSync("initdb", ["--version"], { encoding: "utf8" });
    if (r.error || r.status !== 0) return "initdb is not installed (PostgreSQL server binaries are needed for this test)";
    if (process.getuid?.() === 0 && spawnSync("id", ["postgres"]).status !== 0) return "running as root without a postgres user to run initdb as";
    return undefined;
  }
  /** A fresh, started cluster on loopback and a free port. */
  static async create(): Promise<OwnPostgres> {
    const p = new OwnPostgres({ dir: mkdtempSync(path.join(tmpdir(), "sieve-pg-")), port: await freePort() });
    p.init();
    await p.start();
    return p;
  }
  /** URL over TCP (what the services use). */
  url(db = "postgres"): string {
    return `postgres://postgres@${this.opts.host ?? "127.0.0.1"}:${this.opts.port}/${db}`;
  }
  /** URL over the Unix socket (reachable from the starting process in any case). */
  socketUrl(db = "postgres"): string {
    return `postgres://postgres@/${db}?host=${encodeURIComponent(this.sockets)}&port=${this.opts.port}`;
  }
  /** initdb (trust auth, no fsync: this cluster is thrown away). */
  init(): void {
    mkdirSync(this.sockets, { recursive: true });
    if (this.user) {
      chownSync(this.opts.dir, this.user.uid, this.user.gid);
      chownSync(this.sockets, this.user.uid, this.user.gid);
    }
    const args = ["-D", this.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--no-locale"];
    const u = this.user;
    if (u) execFileSync("setpriv", [`--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", "initdb", ...args], { stdio: "ignore" });
    else execFileSync("initdb", args, { stdio: "ignore" });
    // initdb trusts loopback only; inside a namespace the clients come from the namespace's own
    // subnet ("samenet": https://www.postgresql.org/docs/current/auth-pg-hba-conf.html).
    appendFileSync(path.join(this.data, "pg_hba.conf"), "host all all samenet trust\n");
  }
  async start(): Promise<void> {
    const args = ["-D", this.data, "-p", String(this.opts.port), "-h", this.opts.host ?? "127.0.0.1", "-k", this.sockets];
    // Speed over durability for a throw-away cluster; enough connections for API + 3 workers + checks.
    args.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB");
    this.proc = spawnTracked("postgres", "postgres", args, {
      logFile: path.join(this.opts.dir, "postgres.log"),
      ...(this.user ? { asUser: this.user } : {}),
      ...(this.opts.netns ? { netns: this.opts.netns } : {}),
    });
    await until("postgres to answer", () => this.answers(), 30_000, 200);
  }
  async answers(): Promise<boolean> {
    const c = new pg.Client({ connectionString: this.socketUrl(), connectionTimeoutMillis: 2_000 });
    c.on("error", () => {});
    try {
      await c.connect();
      await c.query("select 1");
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  }
  /**
   * Shutdown, waited for: "fast" (SIGINT: sessions are terminated, the cluster stops cleanly, as in
   * a failover or a restart) or "immediate" (SIGQUIT: no checkpoint, as in a crash).
   * https://www.postgresql.org/docs/current/server-shutdown.html
   */
  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!this.proc?.alive()) return;
    await this.proc.kill(mode === "fast" ? "SIGINT" : "SIGQUIT");
    await Promise.race([this.proc.exited, new Promise((r) => setTimeout(r, 20_000))]);
    await this.proc.kill("SIGKILL");
  }
  /** Stopped and its directory removed. */
  async destroy(): Promise<void> {
    await this.stop("immediate");
    rmSync(this.opts.dir, { recursive: true, force: true });
  }
  async createDatabase(name: string): Promise<void> {
    const c = new pg.Client({ connectionString: this.socketUrl() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
  }
}
