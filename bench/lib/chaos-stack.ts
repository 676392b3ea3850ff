/**
 * The chaos bench's deployment: its own redis-server (AOF) and Postgres cluster, the provider
 * simulator behind a recording proxy (test/support/logged-sim.ts), and Sieve as separate processes
 * (one API, three workers: `sieve start`, apps/cli/src/start.ts, with SIEVE_ROLE=api / workers)
 * under a small supervisor that restarts any process that exits, as a container restart policy
 * would, and counts the exits nobody asked for. One worker can run in its own network namespace
 * ("another host") whose link can be cut.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnTracked, sleep, until, type Spawned } from "../../test/support/children.js";
import { OwnPostgres, OwnRedis, freePort } from "../../test/support/own-services.js";
import type { SimLog } from "../../test/support/logged-sim.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CHAOS_TENANT_KEY = "sk-sieve-chaos-bench-0123456789abcdef";

export interface Ports {
  redis: number;
  pg: number;
  sim: number;
  api: number;
}

/** A Sieve process kept running by the supervisor. */
export class Supervised {
  proc?: Spawned;
  /** Exits that neither the bench nor the supervisor asked for (crashes). */
  crashes = 0;
  private expecting = false;
  private stopped = false;
  private generation = 0;
  constructor(
    readonly name: string,
    private readonly launch: () => Spawned,
    /** Delay before the supervisor restarts it, ms. */
    private readonly restartMs = 1_000,
  ) {}

  start(): void {
    this.stopped = false;
    const gen = ++this.generation;
    this.proc = this.launch();
    void this.proc.exited.then(() => {
      if (gen !== this.generation || this.stopped) return;
      if (!this.expecting) this.crashes++;
      this.expecting = false;
      setTimeout(() => {
        if (gen === this.generation && !this.stopped) this.start();
      }, this.restartMs).unref();
    });
  }

  /** SIGKILL now (the supervisor brings it back after `restartMs`). */
  async kill(): Promise<void> {
    this.expecting = true;
    await this.proc?.kill("SIGKILL");
  }

  /** SIGSTOP / SIGCONT: the stand-in for a partition where namespaces cannot be made. */
  freeze(on: boolean): void {
    this.proc?.child.kill(on ? "SIGSTOP" : "SIGCONT");
  }

  /** Stops for good: SIGTERM, then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    this.stopped = true;
    const p = this.proc;
    if (!p?.alive()) return;
    p.child.kill("SIGCONT");
    await p.kill("SIGTERM");
    await Promise.race([p.exited, sleep(5_000)]);
    await p.kill("SIGKILL");
  }
}

export interface PartitionedHost {
  ns: string;
  /** Cuts the host off (its only link goes down) or brings it back. */
  setLink(up: boolean): void;
  close(): void;
}

/**
 * A network namespace for one worker "host". Inside it a forwarder listens on 127.0.0.1 at the
 * same ports as Redis, Postgres and the simulator outside and carries the bytes over Unix sockets
 * in the filesystem; so the worker runs with the same configuration, and taking the namespace's
 * loopback down cuts every connection it has (packets are dropped: its sockets stall, as on a
 * real partition). No address outside the namespace is involved.
 */
export async function partitionedHost(dir: string, ports: Ports, sockets: { redis: string; pg: string; sim: string }): Promise<PartitionedHost | string> {
  if (process.getuid?.() !== 0) return "not root";
  const ns = `svchaos${process.pid}`;
  try {
    execFileSync("ip", ["netns", "add", ns], { stdio: "ignore" });
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"], { stdio: "ignore" });
  } catch (e) {
    return `ip netns add failed: ${(e as Error).message}`;
  }
  const fwd = spawnTracked("forward", process.execPath, ["--import", "tsx", path.join(ROOT, "test/support/forward.ts"),
    `tcp:127.0.0.1:${ports.redis}=unix:${sockets.redis}`, `tcp:127.0.0.1:${ports.pg}=unix:${sockets.pg}`, `tcp:127.0.0.1:${ports.sim}=unix:${sockets.sim}`], {
    netns: ns,
    cwd: ROOT,
    logFile: path.join(dir, "forward.log"),
  });
  await until("the namespace's forwarder", async () => readFileSync(path.join(dir, "forward.log"), "utf8").includes("ready"), 30_000, 200);
  return {
    ns,
    setLink(up) {
      execFileSync("ip", ["-n", ns, "link", "set", "lo", up ? "up" : "down"], { stdio: "ignore" });
    },
    close() {
      void fwd.kill("SIGKILL");
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // already gone
      }
    },
  };
}

export class ChaosStack {
  redis!: OwnRedis;
  pg!: OwnPostgres;
  ports!: Ports;
  simSocket = "";
  private sim?: Spawned;
  api?: Supervised;
  workers: Supervised[] = [];
  database = "";

  constructor(readonly dir: string, private readonly latency: { ms: number; jitterMs: number }) {}

  async start(): Promise<void> {
    this.ports = { redis: await freePort(), pg: await freePort(), sim: await freePort(), api: await freePort() };
    this.redis = new OwnRedis({ dir: path.join(this.dir, "redis"), port: this.ports.redis, aof: true });
    this.pg = new OwnPostgres({ dir: path.join(this.dir, "pg"), port: this.ports.pg });
    this.pg.init();
    this.simSocket = path.join(this.dir, "sim.sock");
    this.sim = spawnTracked("sim", process.execPath, ["--import", "tsx", path.join(ROOT, "test/support/logged-sim.ts"), "--port", String(this.ports.sim), "--socket", this.simSocket,
      "--latency-ms", String(this.latency.ms), "--jitter-ms", String(this.latency.jitterMs)], { cwd: ROOT, logFile: path.join(this.dir, "sim.log") });
    await Promise.all([this.redis.start(), this.pg.start()]);
    await until("the simulator", () => this.simLog(false).then(() => true), 60_000, 250);
  }

  get pgSocket(): string {
    return path.join(this.pg.sockets, `.s.PGSQL.${this.ports.pg}`);
  }

  async simLog(reset: boolean): Promise<SimLog> {
    const r = await fetch(`http://127.0.0.1:${this.ports.sim}/_log`, { method: reset ? "POST" : "GET" });
    return (await r.json()) as SimLog;
  }

  env(): Record<string, string> {
    return {
      DATABASE_URL: this.pg.url(this.database),
      REDIS_URL: this.redis.url,
      OPENAI_API_KEY: "sk-chaos-simulator-key-0123456789",
      OPENAI_BASE_URL: `http://127.0.0.1:${this.ports.sim}/v1`,
      SIEVE_ROUTE_CLASSIFY: "openai:gpt-4.1-mini",
      SIEVE_ROUTE_TRANSLATE: "openai:gpt-4.1-mini",
      // The semantic cache loads an embedding model per API process: off, to fit on 2 cores.
      SIEVE_SEMANTIC_CACHE: "off",
      SIEVE_API_KEYS: `chaos:${CHAOS_TENANT_KEY}`,
      HOST: "127.0.0.1",
      PORT: String(this.ports.api),
      LOG_LEVEL: "info",
    };
  }

  private sieve(name: string, role: "api" | "workers", netns?: string): Spawned {
    return spawnTracked(name, process.execPath, ["--import", "tsx", path.join(ROOT, "apps/cli/src/main.ts"), "start"], {
      cwd: ROOT,
      env: { ...process.env, ...this.env(), SIEVE_ROLE: role },
      logFile: path.join(this.dir, `${name}.log`),
      ...(netns ? { netns } : {}),
    });
  }

  /** API + 3 workers for one scenario, on a fresh database; `hostNs` puts worker 3 in a namespace. */
  async up(database: string, logTag: string, hostNs?: string): Promise<void> {
    this.database = database;
    this.api = new Supervised("api", () => this.sieve(`${logTag}-api`, "api"));
    this.workers = [1, 2, 3].map((i) => new Supervised(`worker${i}`, () => this.sieve(`${logTag}-worker${i}`, "workers", i === 3 ? hostNs : undefined), 500));
    this.api.start();
    for (const w of this.workers) w.start();
    await until("the API to be ready", async () => (await fetch(`http://127.0.0.1:${this.ports.api}/readyz`)).status === 200, 90_000, 250);
    await until(
      "three workers to start",
      async () => [1, 2, 3].every((i) => readFileSync(path.join(this.dir, `${logTag}-worker${i}.log`), "utf8").includes('"workers started"')),
      90_000,
      250,
    );
  }

  /** Parcels waiting (not yet taken by a worker) in the realtime queues. */
  async waitingParcels(): Promise<number> {
    const r = this.redis.client();
    try {
      let n = 0;
      for (const key of await r.keys("*:realtime-*:wait")) n += await r.llen(key);
      for (const key of await r.keys("*:realtime-*:prioritized")) n += await r.zcard(key);
      return n;
    } catch {
      return -1;
    } finally {
      r.disconnect();
    }
  }

  crashes(): number {
    return (this.api?.crashes ?? 0) + this.workers.reduce((n, w) => n + w.crashes, 0);
  }

  async down(): Promise<void> {
    await Promise.all([this.api?.stop(), ...this.workers.map((w) => w.stop())]);
  }

  /** Redis killed and started again with nothing: no AOF, no RDB (a failover to an empty replica). */
  async redisRestartEmpty(): Promise<void> {
    await this.redis.kill();
    rmSync(path.join(this.redis.opts.dir, "appendonlydir"), { recursive: true, force: true });
    rmSync(path.join(this.redis.opts.dir, "dump.rdb"), { force: true });
    await this.redis.start();
  }

  async close(): Promise<void> {
    await this.down().catch(() => {});
    await this.sim?.kill("SIGKILL");
    await this.pg?.stop().catch(() => {});
    await this.redis?.stop().catch(() => {});
  }
}
