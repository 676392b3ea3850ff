/**
 * Child processes of destructive tests and the chaos bench: every one is registered here so that a
 * failing run still kills them all (on the normal path, on an exception and when the process exits).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";

const live = new Set<ChildProcess>();

process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export interface Spawned {
  child: ChildProcess;
  name: string;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  exited: Promise<number | string>;
  /** True until the process has exited. */
  alive(): boolean;
  /** Sends a signal; SIGKILL waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnTracked extends SpawnOptions {
  /** Appends stdout and stderr here (a file per process keeps the bench's own output readable). */
  logFile?: string;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Run as this uid/gid (root only): Postgres refuses to run as root. */
  asUser?: { uid: number; gid: number };
}

export function spawnTracked(name: string, cmd: string, args: string[], opts: SpawnTracked = {}): Spawned {
  const { logFile, netns, asUser, ...rest } = opts;
  let file = cmd;
  let argv = args;
  // `ip netns exec` and setpriv both exec the next command (no extra parent), so the pid we hold
  // is the service's own and a signal reaches it. Namespace first: entering one needs root.
  if (asUser) {
    argv = [`--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, "--init-groups", file, ...argv];
    file = "setpriv";
  }
  if (netns) {
    argv = ["netns", "exec", netns, file, ...argv];
    file = "ip";
  }
  let out: WriteStream | undefined;
  if (logFile) out = createWriteStream(logFile, { flags: "a" });
  const child = spawn(file, argv, { stdio: ["ignore", out ? "pipe" : "ignore", out ? "pipe" : "inherit"], ...rest });
  if (out) {
    child.stdout?.pipe(out, { end: false });
    child.stderr?.pipe(out, { end: false });
  }
  live.add(child);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    const finish = (code: number | string) => {
      if (done) return;
      done = true;
      live.delete(child);
      resolve(code);
    };
    child.once("exit", (code, signal) => finish(code ?? signal ?? "unknown"));
    child.once("error", (e) => finish(`spawn error: ${e.message}`));
  });
  return {
    child,
    name,
    exited,
    alive: () => !done,
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      if (done) return;
      child.kill(signal);
      if (signal === "SIGKILL") await exited;
    },
  };
}

/** SIGKILLs every registered child still running and waits (at most 5 s) for them to go. */
export async function killAllChildren(): Promise<void> {
  const all = [...live];
  for (const c of all) c.kill("SIGKILL");
  const deadline = Date.now() + 5_000;
  while (live.size > 0 && Date.now() < deadline) await sleep(50);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String((last as Error).message ?? last)})` : ""}`);
}
