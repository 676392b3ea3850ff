import { test } from "node:test";
import assert from "node:assert/strict";
import { splitLines, type Line } from "./lines.js";

async function collect(chunks: Array<string | Buffer>, max = 1_000): Promise<Line[]> {
  const out: Line[] = [];
  for await (const l of splitLines((async function* () { yield* chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c)); })(), max)) out.push(l);
  return out;
}

test("lines split across chunks, CRLF endings, a last line without newline", async () => {
  const lines = await collect(["ab", "c\r\nde", "f\n\ng", "h"]);
  assert.deepEqual(lines.map((l) => [l.no, l.text]), [[1, "abc"], [2, "def"], [3, ""], [4, "gh"]]);
});

test("a multi-byte character cut between two chunks is decoded whole", async () => {
  const bytes = Buffer.from('{"t":"é€😀"}\n');
  const lines = await collect([bytes.subarray(0, 7), bytes.subarray(7, 9), bytes.subarray(9)]);
  assert.equal(lines[0]!.text, '{"t":"é€😀"}');
});

test("a line over the limit is reported as too long and skipped, without holding it", async () => {
  const lines = await collect(["ok\n", "x".repeat(600), "y".repeat(600), "\nnext\n"], 1_000);
  assert.deepEqual(lines.map((l) => [l.no, l.tooLong, l.text]), [[1, false, "ok"], [2, true, ""], [3, false, "next"]]);
  assert.equal(lines[1]!.bytes, 1_200);
});

test("the source's chunk buffers may be reused: lines are copies", async () => {
  const shared = Buffer.from("aaaa");
  const out: string[] = [];
  async function* src() {
    shared.write("ab\nc");
    yield shared;
    shared.write("d\nxy");
    yield shared;
  }
  for await (const l of splitLines(src(), 100)) out.push(l.text);
  assert.deepEqual(out, ["ab", "cd", "xy"]);
});
