/**
 * Network namespaces made by a test inside its own sandbox: a "hub" namespace holding a bridge and
 * one namespace per host, each joined to the bridge by a veth pair created directly inside the
 * namespaces (the root namespace never gets an interface or an address). Addresses come from a
 * private /24 that exists only inside these namespaces. `close()` deletes every namespace it made.
 * Linux: ip-netns(8) https://man7.org/linux/man-pages/man8/ip-netns.8.html
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";

/** Why namespaces cannot be made here, or undefined when they can (root + iproute2 + a probe). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "network namespaces need root (ip netns add)";
  if (spawnSync("ip", ["-V"]).status !== 0) return "the ip command (iproute2) is not installed";
  const probe = `sieveprobe${randomBytes(3).toString("hex")}`;
  const r = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.error?.message || "").trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

export interface Host {
  ns: string;
  addr: string;
  /** The host's interface towards the bridge (inside its namespace). */
  dev: string;
}

export class NetnsLab {
  readonly id = randomBytes(2).toString("hex");
  readonly hub: string;
  private readonly made: string[] = [];
  private n = 0;

  /** `subnet` like "10.231.7": the /24 exists only inside this lab's namespaces. */
  constructor(readonly subnet: string) {
    this.hub = this.addNs("hub");
    ip("-n", this.hub, "link", "add", "br0", "type", "bridge");
    ip("-n", this.hub, "link", "set", "br0", "up");
    ip("-n", this.hub, "link", "set", "lo", "up");
  }

  private addNs(role: string): string {
    const name = `sv${this.id}-${role}`;
    ip("netns", "add", name);
    this.made.push(name);
    return name;
  }

  /** A namespace joined to the bridge with address `${subnet}.${octet}/24`. */
  addHost(role: string, octet: number): Host {
    const ns = this.addNs(role);
    const port = `p${this.id}${++this.n}`; // bridge-side end, <= 15 chars
    ip("-n", this.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns);
    ip("-n", this.hub, "link", "set", port, "master", "br0");
    ip("-n", this.hub, "link", "set", port, "up");
    ip("-n", ns, "addr", "add", `${this.subnet}.${octet}/24`, "dev", "eth0");
    ip("-n", ns, "link", "set", "eth0", "up");
    ip("-n", ns, "link", "set", "lo", "up");
    return { ns, addr: `${this.subnet}.${octet}`, dev: "eth0" };
  }

  /** Gives the hub itself an address (for a forwarder that bridges the test to the hosts). */
  addressHub(octet: number): string {
    ip("-n", this.hub, "addr", "add", `${this.subnet}.${octet}/24`, "dev", "br0");
    return `${this.subnet}.${octet}`;
  }

  /** Cuts a host off (its link goes down: packets are dropped, connections stall) or brings it back. */
  setLink(h: Host, up: boolean): void {
    ip("-n", h.ns, "link", "set", h.dev, up ? "up" : "down");
  }

  /** Deletes every namespace this lab made (processes inside must have been killed first). */
  close(): void {
    for (const ns of this.made.reverse()) spawnSync("ip", ["netns", "del", ns]);
    this.made.length = 0;
  }
}
