/**
 * `npm run bench:compare -- --base REV [--head REV] [--rounds N] [-- bench:pipeline options]`:
 * bench:pipeline for two commits, side by side in one run on this machine, to show that a change
 * (a refactoring, a dependency bump) costs nothing beyond the run-to-run spread.
 *
 * Each commit is checked out in its own worktree under .sieve/compare/ (dependencies installed
 * with `npm ci`), so neither run touches this checkout. The runs alternate A B B A A B … so that a
 * slow drift of the shared machine's load falls on both sides. Reported per side: every run's
 * numbers, their median and spread (max - min, relative to the median), and head / base of the
 * medians. Writes bench/results/pipeline-compare-latest.json. Asserts nothing.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DATASETS_DIR } from "../test/support/datasets.js";
import { renderTable, round } from "./lib/pipeline-util.js";

const HELP = `npm run bench:compare -- --base REV [--head REV] [--rounds N] [-- pipeline options]

  --base REV     the commit to compare against (required)
  --head REV     the commit under test (default HEAD: commit your change first)
  --rounds N     runs per commit (default 3), alternating A B B A ...
  after --        options passed to bench:pipeline in every run (e.g. --reps 1 --items 6000)`;

const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
const own = sep >= 0 ? argv.slice(0, sep) : argv;
const pipelineArgs = sep >= 0 ? argv.slice(sep + 1) : [];
const { values: a } = parseArgs({ args: own, options: { base: { type: "string" }, head: { type: "string" }, rounds: { type: "string" }, help: { type: "boolean" } } });
if (a.help || !a.base) {
  console.log(HELP);
  process.exit(a.help ? 0 : 2);
}
const rounds = Number(a.rounds ?? 3);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) {
  console.error("--rounds: an integer from 1 to 10");
  process.exit(2);
}

const repo = fileURLToPath(new URL("..", import.meta.url));
const git = (...args: string[]): string => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();

/** A clean worktree of `rev` with its dependencies, reused across runs of this script. */
function worktree(rev: string): { rev: string; dir: string } {
  const sha = git("rev-parse", "--verify", `${rev}^{commit}`);
  const dir = path.join(repo, ".sieve", "compare", sha.slice(0, 12));
  if (!existsSync(dir)) {
    mkdirSync(path.dirname(dir), { recursive: true });
    git("worktree", "add", "--detach", dir, sha);
  }
  if (!existsSync(path.join(dir, "node_modules"))) {
    console.log(`npm ci in ${path.relative(repo, dir)} ...`);
    execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit" });
  }
  return { rev: sha, dir };
}

interface RunSummary {
  a_rawBullmqJobsPerS: number;
  b_sieveItemsPerS: number;
  c_ratio: number;
  d_llmCallsPer1000Items: number;
  e_inputTokensPerItem: { sieve: number; oneCallPerItem: number } | number;
  f_addedLatencyMs: unknown;
}

function runPipeline(tree: { dir: string }): RunSummary {
  const quick = pipelineArgs.includes("--quick");
  const res = spawnSync("npx", ["--no-install", "tsx", "bench/pipeline.ts", ...pipelineArgs], {
    cwd: tree.dir,
    stdio: "inherit",
    env: { ...process.env, SIEVE_DATASETS_DIR: DATASETS_DIR },
  });
  if (res.status !== 0) throw new Error(`bench:pipeline failed in ${tree.dir} (exit ${res.status})`);
  const file = path.join(tree.dir, "bench", "results", `${quick ? "pipeline-quick" : "pipeline"}-latest.json`);
  return (JSON.parse(readFileSync(file, "utf8")) as { summary: RunSummary }).summary;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (xs: number[]): number => (Math.max(...xs) - Math.min(...xs)) / median(xs);

const base = worktree(a.base);
const head = worktree(a.head ?? "HEAD");
const startedAt = new Date();
const runs: Record<"base" | "head", RunSummary[]> = { base: [], head: [] };
// A B B A A B ...: each side runs first in every other pair.
for (let i = 0; i < rounds; i++) {
  const order: Array<"base" | "head"> = i % 2 === 0 ? ["base", "head"] : ["head", "base"];
  for (const side of order) {
    console.log(`\n=== round ${i + 1}/${rounds}: ${side} (${(side === "base" ? base : head).rev.slice(0, 12)})`);
    runs[side].push(runPipeline(side === "base" ? base : head));
  }
}

const metric = (side: "base" | "head", pick: (r: RunSummary) => number) => {
  const xs = runs[side].map(pick);
  return { runs: xs, median: round(median(xs), 3), spread: round(spread(xs), 3) };
};
const picks: Record<string, (r: RunSummary) => number> = {
  "raw BullMQ jobs/s": (r) => r.a_rawBullmqJobsPerS,
  "Sieve items/s": (r) => r.b_sieveItemsPerS,
  // (b) / (a) of the same run: less sensitive to how busy the machine was during that run.
  "Sieve items/s per raw job/s": (r) => r.c_ratio,
  "LLM calls per 1,000 items": (r) => r.d_llmCallsPer1000Items,
};
const metrics = Object.fromEntries(
  Object.entries(picks).map(([name, pick]) => {
    const b = metric("base", pick);
    const h = metric("head", pick);
    return [name, { base: b, head: h, headOverBase: round(h.median / b.median, 3) }];
  }),
);
const describe = (m: { runs: number[]; median: number; spread: number }) => `${m.median} (runs ${m.runs.map((x) => round(x, x < 10 ? 3 : 0)).join(", ")}; spread ${round(m.spread * 100, 1)}%)`;
const rows = Object.entries(metrics).flatMap(([name, m]): Array<[string, string, string]> => [
  [`${name}, base`, describe(m.base), ""],
  [`${name}, head`, describe(m.head), String(m.headOverBase)],
]);
console.log(`\nbench:pipeline, base ${base.rev.slice(0, 12)} vs head ${head.rev.slice(0, 12)}, ${rounds} runs each, alternating`);
console.log(renderTable(rows, ["measurement", "median (runs; spread)", "head / base"]));

const out = {
  benchmark: "pipeline-compare",
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  base: base.rev,
  head: head.rev,
  rounds,
  pipelineArgs,
  metrics,
  runs,
};
const dir = path.join(repo, "bench", "results");
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, "pipeline-compare-latest.json"), `${JSON.stringify(out, null, 2)}\n`);
console.log("\nwrote bench/results/pipeline-compare-latest.json");
