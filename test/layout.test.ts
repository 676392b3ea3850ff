/**
 * The shape of the code, as docs/architecture.md describes it: the product never imports its test
 * tools, no module imports itself back through a cycle, files stay small enough to read as one
 * idea, and comments speak of this repository only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const PRODUCT = ["apps", "packages"];
const ALL = ["apps", "packages", "tools"];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}
const isTest = (f: string) => /\.test\.ts$/.test(f) || /(^|\/)(testSupport|testing|testGauges)\.ts$/.test(f) || f.includes(`${path.sep}test${path.sep}`);
const sources = (tops: string[]) => tops.flatMap((t) => readdirSync(path.join(root, t)).map((p) => path.join(root, t, p, "src"))).filter(existsSync).flatMap(tsFiles).filter((f) => !isTest(f));
const rel = (f: string) => path.relative(root, f);

/** Every module specifier a file imports or re-exports, statically or dynamically, types included. */
function specifiers(src: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of src.matchAll(re)) out.push((m[1] ?? m[2])!);
  return out;
}

/** @sieve/<pkg>[/sub] and relative specifiers to a file of this repository (others: undefined). */
const packageDirs = new Map<string, string>(
  ALL.flatMap((t) =>
    readdirSync(path.join(root, t))
      .filter((p) => existsSync(path.join(root, t, p, "package.json")))
      .map((p): [string, string] => [JSON.parse(readFileSync(path.join(root, t, p, "package.json"), "utf8")).name, path.join(root, t, p)]),
  ),
);
function resolve(from: string, spec: string): string | undefined {
  let base: string | undefined;
  if (spec.startsWith(".")) base = path.resolve(path.dirname(from), spec);
  else {
    const m = /^(@sieve\/[^/]+)(?:\/(.+))?$/.exec(spec);
    const dir = m && packageDirs.get(m[1]!);
    if (!dir) return undefined;
    // package.json exports: "." -> src/index.ts (the CLI: src/main.ts), "./*" -> src/*.ts
    base = m[2] ? path.join(dir, "src", m[2]) : path.join(dir, "src", existsSync(path.join(dir, "src", "index.ts")) ? "index" : "main");
  }
  for (const cand of [base.replace(/\.js$/, ".ts"), `${base}.ts`, path.join(base, "index.ts")]) if (existsSync(cand) && statSync(cand).isFile()) return cand;
  return undefined;
}

test("the product (apps/, packages/) never imports a test tool (tools/, @sieve/simulator, @sieve/qdrant-standin)", () => {
  const offenders: string[] = [];
  for (const f of sources(PRODUCT)) {
    for (const spec of specifiers(readFileSync(f, "utf8"))) {
      const target = resolve(f, spec);
      if (/^@sieve\/(simulator|qdrant-standin)/.test(spec) || (target && rel(target).startsWith("tools/"))) offenders.push(`${rel(f)} imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test("no import cycles among the modules of apps/, packages/ and tools/ (type-only imports count)", () => {
  const files = sources(ALL);
  const graph = new Map<string, string[]>();
  for (const f of files) graph.set(f, [...new Set(specifiers(readFileSync(f, "utf8")).map((s) => resolve(f, s)).filter((t): t is string => !!t && t !== f && !isTest(t)))]);
  // Tarjan's strongly connected components: every component of more than one module is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(rel(w));
      } while (w !== v);
      if (comp.length > 1) cycles.push(comp.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test("no source file in apps/ or packages/ is over 400 lines", () => {
  const long = sources(PRODUCT)
    .map((f) => ({ f: rel(f), lines: readFileSync(f, "utf8").split("\n").length }))
    .filter((x) => x.lines > 400)
    .map((x) => `${x.f}: ${x.lines} lines`);
  assert.deepEqual(long, []);
});

test("comments and docs speak of this repository: no issue numbers, no files from outside it", () => {
  const docs = [path.join(root, "README.md"), ...readdirSync(path.join(root, "docs")).filter((n) => n.endsWith(".md")).map((n) => path.join(root, "docs", n))];
  const files = [...ALL.flatMap((t) => tsFiles(path.join(root, t))), ...tsFiles(path.join(root, "bench")), ...tsFiles(path.join(root, "test")).filter((f) => !f.endsWith("layout.test.ts")), ...docs];
  const bad: string[] = [];
  for (const f of files) {
    readFileSync(f, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (/\bissues? #?\d|\(cache issue\)|the cache issue|STYLE\.md|PROVIDER-NOTES/i.test(line)) bad.push(`${rel(f)}:${i + 1}: ${line.trim().slice(0, 100)}`);
      });
  }
  assert.deepEqual(bad, []);
});
