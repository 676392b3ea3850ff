/**
 * A workers-only process (SIEVE_ROLE=workers) has no API, but an operator still needs to see it:
 * /metrics (Prometheus, including sieve_dependency_up{role="workers"}), /healthz (the process
 * runs) and /readyz (503 while Redis or Postgres is unreachable from this process), on
 * SIEVE_WORKER_METRICS_PORT (docs/operations.md#metrics).
 */
import { createServer, type Server } from "node:http";
import { registry, type DependencyMonitor } from "@sieve/shared";

export interface WorkerHttpHandle {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function startWorkerHttp(opts: { port: number; host: string; monitor: DependencyMonitor }): Promise<WorkerHttpHandle> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET") {
      res.writeHead(405, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "method_not_allowed", message: "GET only" } }));
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
      return;
    }
    if (path === "/readyz") {
      const checks = opts.monitor.snapshot();
      const ok = Object.values(checks).every((v) => v === "ok");
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json", ...(ok ? {} : { "retry-after": "5" }) }).end(JSON.stringify({ ok, checks }));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "not_found", message: "no such route" } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    server,
    url: `http://${opts.host === "0.0.0.0" ? "127.0.0.1" : opts.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
