/** Starts and drives the simulator child process (bench/lib/pipeline-sim-child.ts). */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { SimulatorFaults, SimulatorStats } from "@sieve/simulator";

export interface SimProcess {
  url: string;
  pid: number;
  setFaults(f: SimulatorFaults): Promise<void>;
  stats(): Promise<SimulatorStats>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function startSimProcess(): Promise<SimProcess> {
  const script = fileURLToPath(new URL("./pipeline-sim-child.ts", import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", script], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("simulator child did not start within 30 s")), 30_000);
    child.once("message", (m: unknown) => {
      clearTimeout(t);
      const msg = m as { type?: string; url?: string };
      if (msg.type === "ready" && msg.url) resolve(msg.url);
      else reject(new Error(`unexpected message from simulator child: ${JSON.stringify(m)}`));
    });
    child.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`simulator child exited early (code ${code})`));
    });
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`simulator ${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as unknown;
  };
  return {
    url,
    pid: child.pid!,
    async setFaults(f) {
      await control("POST", "/_sim/faults", f);
    },
    async stats() {
      return (await control("GET", "/_sim/stats")) as SimulatorStats;
    },
    async reset() {
      await control("POST", "/_sim/reset");
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
