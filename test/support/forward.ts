/**
 * A byte-for-byte TCP/Unix-socket forwarder, one process per network namespace: it lets the test
 * (outside the namespaces) reach a service listening on a namespace-local address through a Unix
 * socket in the filesystem, and lets a process inside a namespace reach one outside.
 *   node --import tsx test/support/forward.ts unix:/tmp/x/api.sock=tcp:10.231.7.20:8080 ...
 * Prints "ready" once every listener is up; runs until killed.
 */
import { connect, createServer, type Socket } from "node:net";
import { rmSync } from "node:fs";

type End = { unix: string } | { host: string; port: number };

function parseEnd(s: string): End {
  if (s.startsWith("unix:")) return { unix: s.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(s);
  if (!m) throw new Error(`bad endpoint ${s} (unix:/path or tcp:host:port)`);
  return { host: m[1]!, port: Number(m[2]) };
}

function dial(e: End): Socket {
  return "unix" in e ? connect(e.unix) : connect(e.port, e.host);
}

const pairs = process.argv.slice(2).map((a) => {
  const [from, to] = a.split("=");
  if (!from || !to) throw new Error(`bad pair ${a} (listen=target)`);
  return { from: parseEnd(from), to: parseEnd(to) };
});

await Promise.all(
  pairs.map(
    ({ from, to }) =>
      new Promise<void>((resolve, reject) => {
        const server = createServer((inbound) => {
          const outbound = dial(to);
          inbound.pipe(outbound);
          outbound.pipe(inbound);
          const close = () => {
            inbound.destroy();
            outbound.destroy();
          };
          inbound.on("error", close).on("close", close);
          outbound.on("error", close).on("close", close);
        });
        server.once("error", reject);
        if ("unix" in from) {
          rmSync(from.unix, { force: true });
          server.listen(from.unix, () => resolve());
        } else server.listen(from.port, from.host, () => resolve());
      }),
  ),
);
console.log("ready");
