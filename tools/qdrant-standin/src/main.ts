#!/usr/bin/env -S npx tsx
/**
 * Runs the Qdrant TEST STAND-IN (not Qdrant) on a port:
 *   npx tsx tools/qdrant-standin/src/main.ts [--port 6333] [--host 127.0.0.1]
 * Stops on SIGINT/SIGTERM. In-memory only: everything is lost on exit.
 */
import { parseArgs } from "node:util";
import { startQdrantStandin } from "./server.js";

const { values } = parseArgs({ options: { port: { type: "string", default: "6333" }, host: { type: "string", default: "127.0.0.1" } } });
const standin = await startQdrantStandin({ port: Number(values.port), host: values.host });
console.log(`Qdrant TEST STAND-IN (in-memory, exact scan; not Qdrant) listening on ${standin.url}`);
const stop = () => {
  void standin.close().then(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
