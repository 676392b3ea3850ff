/**
 * Shutdown registry: SIGTERM/SIGINT run every registered closer (last registered first) under
 * Promise.allSettled per stage, so one failing closer never keeps the others from running.
 */
import type { Logger } from "./logger.js";

type Closer = { name: string; close: () => Promise<unknown> };

export class Shutdown {
  private readonly stages: Closer[][] = [];
  private done?: Promise<void>;
  constructor(private readonly log?: Logger) {}

  /** Closers registered later run earlier (API stops before workers, workers before connections). */
  add(name: string, close: () => Promise<unknown>): void {
    this.stages.push([{ name, close }]);
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      for (const stage of [...this.stages].reverse()) {
        const res = await Promise.allSettled(stage.map((c) => c.close()));
        res.forEach((r, i) => {
          if (r.status === "rejected") this.log?.warn({ closer: stage[i]!.name, err: String(r.reason) }, "closer failed");
        });
      }
    })();
    return this.done;
  }

  installSignalHandlers(exit = true): void {
    const handler = (sig: string) => {
      this.log?.info({ signal: sig }, "shutting down");
      void this.run().finally(() => {
        if (exit) process.exit(0);
      });
    };
    process.once("SIGTERM", () => handler("SIGTERM"));
    process.once("SIGINT", () => handler("SIGINT"));
  }
}
