/**
 * The faults of the chaos bench, each on a fixed timeline. `run` returns when the last fault of
 * the scenario has ended (that moment starts the drain clock); the clients' submissions are spread
 * over the window, which ends about then, so the drain measures recovery, not left-over load.
 */
import { sleep } from "../../test/support/children.js";
import type { ChaosStack, PartitionedHost } from "./chaos-stack.js";
import { rng } from "./chaos-load.js";

export interface ScenarioCtx {
  stack: ChaosStack;
  quick: boolean;
  /** The partitionable worker host (scenario E), or why there is none. */
  host?: PartitionedHost | string;
  note(msg: string): void;
}

export interface Scenario {
  id: string;
  name: string;
  /** The load window: from the first submission to the end of the last fault, ms. */
  windowMs(quick: boolean): number;
  /** Share of submissions that long-poll with `?wait=`, and for how long. */
  waitShare: number;
  wait: string;
  /** Share of the submissions sent as one burst just before the window ends. @defaultValue 0 */
  burstShare?: number;
  /** Runs worker 3 in its own network namespace. */
  partitionedWorker?: boolean;
  run(ctx: ScenarioCtx, t0: number): Promise<void>;
}

/** Sleeps until `ms` after `t0`. */
async function at(t0: number, ms: number): Promise<void> {
  const d = t0 + ms - Date.now();
  if (d > 0) await sleep(d);
}

export const SCENARIOS: Scenario[] = [
  {
    id: "A",
    name: "A worker SIGKILLed every 5-10 s",
    windowMs: (q) => (q ? 25_000 : 60_000),
    waitShare: 0.3,
    wait: "10s",
    async run(ctx, t0) {
      const r = rng(7);
      const end = this.windowMs(ctx.quick);
      let kills = 0;
      await at(t0, 5_000);
      // Bounded: at most one kill per 5 s of the window.
      for (let i = 0; i < end / 5_000; i++) {
        const next = Date.now() - t0 + 5_000 + Math.floor(r() * 5_000);
        if (next > end) break;
        await at(t0, next);
        const w = ctx.stack.workers[Math.floor(r() * ctx.stack.workers.length)]!;
        await w.kill();
        kills++;
      }
      await at(t0, end);
      ctx.note(`${kills} worker SIGKILLs (each restarted by the supervisor after 0.5 s)`);
    },
  },
  {
    id: "B",
    name: "Redis restarted twice",
    windowMs: (q) => (q ? 24_000 : 36_000),
    waitShare: 0.3,
    wait: "10s",
    async run(ctx, t0) {
      await at(t0, ctx.quick ? 8_000 : 12_000);
      await ctx.stack.redis.stop(); // clean: SIGTERM, the AOF is flushed
      await sleep(3_000);
      await ctx.stack.redis.start();
      await at(t0, ctx.quick ? 20_000 : 32_000);
      await ctx.stack.redis.kill(); // a crash: SIGKILL, the AOF (fsync every second) is replayed
      await sleep(3_000);
      await ctx.stack.redis.start();
      ctx.note("restart 1: SIGTERM, 3 s down; restart 2: SIGKILL, 3 s down; AOF on");
    },
  },
  {
    id: "C",
    name: "Postgres stopped 15 s, then 60 s",
    windowMs: (q) => (q ? 35_000 : 100_000),
    waitShare: 0.3,
    wait: "10s",
    async run(ctx, t0) {
      const [first, gap, second] = ctx.quick ? [5_000, 10_000, 15_000] : [15_000, 20_000, 60_000];
      await at(t0, 5_000);
      await ctx.stack.pg.stop();
      await at(t0, 5_000 + first);
      await ctx.stack.pg.start();
      await at(t0, 5_000 + first + gap);
      await ctx.stack.pg.stop();
      await at(t0, 5_000 + first + gap + second);
      await ctx.stack.pg.start();
      ctx.note(`Postgres down ${first / 1000} s, up ${gap / 1000} s, down ${second / 1000} s (fast shutdown)`);
    },
  },
  {
    id: "D",
    name: "API SIGKILLed 3 times during long-polls",
    windowMs: (q) => (q ? 24_000 : 36_000),
    waitShare: 1,
    wait: "30s",
    async run(ctx, t0) {
      const step = ctx.quick ? 8_000 : 12_000;
      for (let k = 1; k <= 3; k++) {
        await at(t0, k * step);
        await ctx.stack.api!.kill();
      }
      ctx.note("every submission long-polls (?wait=30s); the API is restarted by the supervisor 1 s after each kill");
    },
  },
  {
    id: "E",
    name: "A worker host partitioned",
    windowMs: (q) => (q ? 23_000 : 55_000),
    waitShare: 0.3,
    wait: "10s",
    partitionedWorker: true,
    async run(ctx, t0) {
      const [start, len] = ctx.quick ? [8_000, 15_000] : [10_000, 45_000];
      await at(t0, start);
      // Cut when the host has provider calls in flight (its requests reach the simulator through
      // the namespace's forwarder, over a Unix socket: no client address), waiting at most 10 s.
      const inflight = async () => (await ctx.stack.simLog(false)).byRemote[typeof ctx.host === "object" ? "?" : "127.0.0.1"]?.inflight ?? 0;
      for (let i = 0; i < 100 && (await inflight()) === 0; i++) await sleep(100);
      const atCut = await inflight();
      const host = ctx.host;
      if (typeof host === "object") host.setLink(false);
      else ctx.stack.workers[2]!.freeze(true);
      await at(t0, start + len);
      if (typeof host === "object") host.setLink(true);
      else ctx.stack.workers[2]!.freeze(false);
      ctx.note(
        typeof host === "object"
          ? `worker 3 in its own network namespace; its link down for ${len / 1000} s with ${atCut} provider call(s) in flight`
          : `STAND-IN (no network namespace: ${host}): worker 3 frozen with SIGSTOP for ${len / 1000} s`,
      );
    },
  },
  {
    id: "F",
    name: "Redis killed and restarted empty",
    windowMs: (q) => (q ? 15_000 : 25_000),
    waitShare: 0.3,
    // Half of the items arrive right before the kill, so parcels are waiting in Redis when it dies.
    burstShare: 0.5,
    wait: "10s",
    async run(ctx, t0) {
      // A backlog at the moment of the kill, made certain: the workers pause (SIGSTOP) for the
      // 2.5 s before it, so the burst's parcels wait in Redis, as they do when workers are busy.
      const end = this.windowMs(ctx.quick);
      await at(t0, end - 2_500);
      for (const w of ctx.stack.workers) w.freeze(true);
      await at(t0, end);
      const waiting = await ctx.stack.waitingParcels();
      await ctx.stack.redisRestartEmpty();
      for (const w of ctx.stack.workers) w.freeze(false);
      ctx.note(`SIGKILL, AOF and RDB deleted, started empty; ${waiting} parcels were waiting in Redis (workers paused for the 2.5 s before)`);
    },
  },
];
