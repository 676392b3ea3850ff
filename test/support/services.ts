/**
 * Redis and Postgres servers of a test's own, for tests that stop, kill and restart them (the
 * shared servers are never touched). Redis keeps nothing on disk, so a restart comes back EMPTY,
 * as after a failover to a lagging replica. Postgres is a fresh cluster (initdb) in a temp dir,
 * run as the `postgres` user when the test runs as root.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { Redis } from "ioredis";

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}

/** A redis-server without persistence on a free port. */
export class OwnRedis {
  private proc?: ChildProcess;
  private constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OwnRedis> {
    const r = new OwnRedis(await freePort());
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    this.proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"], { stdio: "ignore" });
    await until("redis-server", async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on("error", () => {});
      try {
        await c.connect();
        return (await c.ping()) === "PONG";
      } finally {
        c.disconnect();
      }
    });
  }

  /** SIGKILL: everything in memory is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    p.kill("SIGKILL");
    await once(p, "exit");
  }
}

function asPostgres(cmd: string, args: string[]): { status: number | null; out: string } {
  const root = process.getuid?.() === 0;
  const res = root ? spawnSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8" }) : spawnSync(cmd, args, { encoding: "utf8" });
  return { status: res.status, out: `${res.stdout ?? ""}${res.stderr ?? ""}${res.error ? String(res.error) : ""}` };
}

/** A throw-away Postgres cluster (initdb + pg_ctl) on a free port. */
export class OwnPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Why a cluster cannot be made here, or undefined when it can. */
  static unavailable(): string | undefined {
    const r = spawnSync("initdb", ["--version"], { encoding: "utf8" });
    if (r.error || r.status !== 0) return "initdb is not installed (PostgreSQL server binaries are needed for this test)";
    if (process.getuid?.() === 0 && spawnSync("id", ["postgres"]).status !== 0) return "running as root without a postgres user to run initdb as";
    return undefined;
  }

  static async create(): Promise<OwnPostgres> {
    const dir = mkdtempSync(path.join(tmpdir(), "sieve-pg-"));
    if (process.getuid?.() === 0) {
      const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
      const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
      chownSync(dir, uid, gid);
    }
    const init = asPostgres("initdb", ["-D", path.join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    if (init.status !== 0) throw new Error(`initdb failed: ${init.out}`);
    const p = new OwnPostgres(dir, await freePort());
    await p.start();
    return p;
  }

  async start(): Promise<void> {
    const r = asPostgres("pg_ctl", ["-D", path.join(this.dir, "data"), "-l", path.join(this.dir, "log"), "-w", "-t", "60", "-o", `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
    if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.out}`);
    await until("postgres", async () => {
      const c = new pg.Client({ connectionString: this.url });
      c.on("error", () => {});
      try {
        await c.connect();
        await c.query("select 1");
        return true;
      } finally {
        await c.end().catch(() => {});
      }
    });
  }

  /** Stops the server ("fast": open sessions are terminated, as in a failover or a restart). */
  stop(mode: "fast" | "immediate" = "fast"): void {
    asPostgres("pg_ctl", ["-D", path.join(this.dir, "data"), "-m", mode, "-w", "stop"]);
  }

  destroy(): void {
    this.stop("immediate");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
