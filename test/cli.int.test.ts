/**
 * The CLI against a real API (real Redis + Postgres): it shows the server's error code and message
 * for every 4xx/5xx (never "fetch failed"), even when the server answers before a large upload has
 * been sent; `sieve batches` on a server without the batch lane says so; and `sieve submit` sends
 * one Idempotency-Key per submission, reused on its own retries, so a lost answer never makes a
 * second job.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { queryRows } from "@sieve/shared";
import { startHarness, LABELS, type Harness } from "./support/harness.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = ["--import", "tsx", path.join(ROOT, "apps/cli/src/main.ts")];

type Ran = { code: number; stdout: string; stderr: string };
async function cli(args: string[], env: Record<string, string>): Promise<Ran> {
  try {
    const r = await run(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, cwd: ROOT, maxBuffer: 10 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe("CLI errors and retries", () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await startHarness({ workers: false });
    dir = mkdtempSync(path.join(tmpdir(), "sieve-cli-"));
  });
  after(async () => {
    await h.close();
  });
  const env = () => ({ SIEVE_URL: h.api.url, SIEVE_API_KEY: h.keys.acme! });

  test("a 400 the server sends while a large upload is still streaming is shown with its code and message", async () => {
    // ~33 MB: the server refuses the header line long before the body has been sent.
    const file = path.join(dir, "big.jsonl");
    const line = (i: number) => JSON.stringify({ id: `b${i}`, text: `item number ${i} `.padEnd(200, "x") });
    writeFileSync(file, Array.from({ length: 150_000 }, (_, i) => line(i)).join("\n") + "\n");
    const r = await cli(["submit", file, "--task", "classify", "--labels", LABELS.join(","), "--lane", "batch", "--no-progress"], env());
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /fetch failed/);
    assert.match(r.stderr, /HTTP 400/);
    assert.match(r.stderr, /invalid_request: lane: the batch lane is not enabled/);
  });

  test("a refused upload is read to its end after the answer: a client still sending is not cut off", async () => {
    // A raw HTTP/1.1 client: header line, then body chunks that keep coming after the 400.
    const { port, hostname } = new URL(h.api.url);
    const sock = net.connect(Number(port), hostname);
    await new Promise<void>((r) => sock.once("connect", () => r()));
    let answer = "";
    let failure: string | undefined;
    sock.on("data", (d) => (answer += String(d)));
    sock.on("error", (e: NodeJS.ErrnoException) => (failure = e.code ?? e.message));
    sock.on("end", () => (failure ??= "server closed the connection"));
    const chunk = (data: string) => `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`;
    sock.write(`POST /v1/bulk HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${h.keys.acme}\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n`);
    sock.write(chunk(JSON.stringify({ task: "classify", labels: LABELS, lane: "batch" }) + "\n"));
    const deadline = Date.now() + 10_000;
    while (!answer.includes("\r\n\r\n{") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(answer, /^HTTP\/1\.1 400/);
    // Keep sending for a while, as a client streaming a large file would, then end the body.
    const line = JSON.stringify({ id: "x", text: "y".repeat(1_000) }) + "\n";
    for (let i = 0; i < 40 && !failure; i++) {
      sock.write(chunk(line.repeat(64)));
      await new Promise((r) => setTimeout(r, 25));
    }
    sock.write("0\r\n\r\n");
    await new Promise((r) => setTimeout(r, 200));
    sock.destroy();
    assert.equal(failure, undefined, "the server read the rest of the body instead of resetting the connection");
    assert.match(answer, /lane: the batch lane is not enabled/);
  });

  test("`sieve batches` on a server without the batch lane names the cause, not a bare 404", async () => {
    const r = await cli(["batches"], env());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /HTTP 404: batch_lane_disabled: the batch lane is not enabled on this server \(SIEVE_BATCH_LANE\)/);
  });

  test("errors of status/results name the server's code and message", async () => {
    const r = await cli(["status", "job_doesnotexist"], env());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /HTTP 404: not_found: job job_doesnotexist not found/);
  });

  test("a submission whose answer is lost is retried with the same Idempotency-Key: one job", async () => {
    // A proxy in front of the API that forwards the first upload, then cuts the connection
    // instead of passing the answer on (as a dropped network would).
    const seen: string[] = [];
    let cut = 0;
    const target = new URL(h.api.url);
    const proxy = http.createServer((req, res) => {
      seen.push(String(req.headers["idempotency-key"] ?? ""));
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (ans) => {
        if (cut === 0) {
          cut++;
          ans.resume();
          ans.on("end", () => req.socket.destroy());
          return;
        }
        res.writeHead(ans.statusCode ?? 502, ans.headers);
        ans.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
    try {
      const file = path.join(dir, "small.jsonl");
      writeFileSync(file, Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `r${i}`, text: `retried upload ${i}` })).join("\n") + "\n");
      const port = (proxy.address() as AddressInfo).port;
      const r = await cli(["submit", file, "--task", "classify", "--labels", LABELS.join(","), "--no-progress"], { ...env(), SIEVE_URL: `http://127.0.0.1:${port}` });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(seen.length, 2, "the CLI retried once");
      assert.ok(seen[0]!.length >= 16, `a key was sent: "${seen[0]}"`);
      assert.equal(seen[1], seen[0], "the same key on the retry");
      const jobId = r.stdout.trim();
      const jobs = await queryRows<{ job_id: string }>(h.db.db, sql`select distinct job_id from items where text like 'retried upload %'`);
      assert.deepEqual(jobs.map((j) => j.job_id), [jobId], "exactly one job, the one printed");
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });
});
