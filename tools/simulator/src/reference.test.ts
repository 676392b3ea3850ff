import { describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { renderPrompt } from "@sieve/shared/prompts/index";
import { resultsJsonSchema, validateResults } from "@sieve/shared/tasks/output";
import type { TaskParams } from "@sieve/shared/tasks/params";
import { generateAnswer, labelFor } from "./answer.js";
import { ReferenceAnswers, parseNoiseSpec, ReferenceNoise } from "./reference.js";
import { startSimulator } from "./server.js";

const LABELS = ["World", "Sports", "Business", "Sci/Tech"];
const classify: TaskParams = { task: "classify", labels: LABELS };

/** 400 texts with known labels, spread over the four labels. */
function referenceFile(): { jsonl: string; gold: Map<string, string> } {
  const gold = new Map<string, string>();
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const text = `Reference headline number ${i} about topic ${i % 7}`;
    const label = LABELS[(i * 3) % 4]!;
    gold.set(text, label);
    lines.push(JSON.stringify({ text, label }));
  }
  lines.push(JSON.stringify({ text: "Good morning", targetLanguage: "de", translation: "Guten Morgen" }));
  return { jsonl: lines.join("\n"), gold };
}

function ask(ref: ReferenceAnswers, texts: string[], params: TaskParams = classify): Array<Record<string, string>> {
  const items = texts.map((text, i) => ({ id: `i${i + 1}`, text }));
  const p = renderPrompt(params, items);
  const schema = resultsJsonSchema(params, items.map((i) => i.id));
  const a = generateAnswer({ schema, system: p.system, user: p.user, reference: ref });
  const v = validateResults(params, items.map((i) => i.id), a.value);
  assert.equal(v.ok.size, texts.length, "every entry stays schema-valid");
  return (a.value as { results: Array<Record<string, string>> }).results;
}

/** Accuracy of calls of `n` items over the whole file, and per position. */
function measure(ref: ReferenceAnswers, gold: Map<string, string>, n: number): { overall: number; first: number; last: number } {
  const texts = [...gold.keys()];
  let right = 0;
  let firstRight = 0;
  let lastRight = 0;
  let calls = 0;
  for (let i = 0; i + n <= texts.length; i += n) {
    const chunk = texts.slice(i, i + n);
    const out = ask(ref, chunk);
    calls++;
    out.forEach((e, k) => {
      const ok = e.label === gold.get(chunk[k]!);
      if (ok) right++;
      if (ok && k === 0) firstRight++;
      if (ok && k === n - 1) lastRight++;
    });
  }
  return { overall: right / (calls * n), first: firstRight / calls, last: lastRight / calls };
}

describe("simulator reference mode", () => {
  const { jsonl, gold } = referenceFile();

  test("without noise every known text gets its reference label, unknown texts keep the synthetic one", () => {
    const ref = ReferenceAnswers.fromJsonl(jsonl);
    assert.deepEqual(ref.size(), { classify: 400, translate: 1 });
    const texts = [...gold.keys()].slice(0, 20);
    const out = ask(ref, [...texts, "A text nobody labelled"]);
    texts.forEach((t, k) => assert.equal(out[k]!.label, gold.get(t)));
    assert.equal(out[20]!.label, labelFor("A text nobody labelled", LABELS));
    // Matching folds case and whitespace like the synthetic answers do.
    assert.equal(ask(ref, [`  ${texts[0]!.toUpperCase()}  `])[0]!.label, gold.get(texts[0]!));
  });

  test("translations come from the file for their target language only", () => {
    const ref = ReferenceAnswers.fromJsonl(jsonl);
    assert.equal(ask(ref, ["good   morning"], { task: "translate", targetLanguage: "de" })[0]!.translation, "Guten Morgen");
    assert.equal(ask(ref, ["Good morning"], { task: "translate", targetLanguage: "es" })[0]!.translation, "[sim→es] Good morning");
  });

  test("a gold label outside the call's label set falls back to the synthetic answer", () => {
    const ref = ReferenceAnswers.fromJsonl(JSON.stringify({ text: "x y z", label: "Elsewhere" }));
    assert.equal(ask(ref, ["x y z"])[0]!.label, labelFor("x y z", LABELS));
  });

  test("noise: accuracy falls with items per call and with position, and matches the configured rates", () => {
    const ref = ReferenceAnswers.fromJsonl(jsonl, ReferenceNoise.parse({ baseAccuracy: 0.95, perItemDrop: 0.01, positionDrop: 0.2, seed: 3 }));
    const single = measure(ref, gold, 1);
    const packed = measure(ref, gold, 20);
    // Expected: alone 0.95; 20 per call: 0.95 - 0.19 - 0.2 * k/19, mean 0.66; first 0.76, last 0.56.
    assert.ok(Math.abs(single.overall - 0.95) < 0.04, `single ${single.overall}`);
    assert.ok(Math.abs(packed.overall - 0.66) < 0.06, `packed ${packed.overall}`);
    assert.ok(single.overall - packed.overall > 0.2);
    // 20 calls only: position effect checked with a wide margin, it is 0.2 in expectation.
    const wide = measure(ReferenceAnswers.fromJsonl(jsonl, ReferenceNoise.parse({ baseAccuracy: 1, positionDrop: 0.6, seed: 1 })), gold, 10);
    assert.ok(wide.first > wide.last + 0.3, `first ${wide.first} last ${wide.last}`);
    assert.equal(ref.accuracy(1, 0), 0.95);
    assert.equal(ref.accuracy(20, 19), 0.95 - 0.19 - 0.2);
  });

  test("wrong answers are other allowed labels, and the same seed gives the same answers", () => {
    const noise = ReferenceNoise.parse({ baseAccuracy: 0.5, seed: 9 });
    const a = ReferenceAnswers.fromJsonl(jsonl, noise);
    const b = ReferenceAnswers.fromJsonl(jsonl, noise);
    const c = ReferenceAnswers.fromJsonl(jsonl, { ...noise, seed: 10 });
    const texts = [...gold.keys()].slice(0, 50);
    const la = ask(a, texts).map((e) => e.label);
    assert.deepEqual(ask(b, texts).map((e) => e.label), la);
    assert.notDeepEqual(ask(c, texts).map((e) => e.label), la);
    const wrong = texts.filter((t, k) => la[k] !== gold.get(t));
    assert.ok(wrong.length > 10 && wrong.length < 40, `wrong ${wrong.length}`);
    for (const l of la) assert.ok(LABELS.includes(l!));
  });

  test("noise spec: parts override defaults, bad parts are named", () => {
    assert.deepEqual(parseNoiseSpec("base:0.9,seed:4"), { baseAccuracy: 0.9, perItemDrop: 0.002, positionDrop: 0.03, minAccuracy: 0.5, seed: 4 });
    assert.throws(() => parseNoiseSpec("bse:0.9"), /"bse:0.9"/);
    assert.throws(() => parseNoiseSpec("base:1.5"), /baseAccuracy/);
    assert.throws(() => ReferenceAnswers.fromJsonl('{"text":"a","label":"x"}\n{"text":1}'), /reference:2/);
  });

  test("over the wire: the OpenAI SDK gets reference labels from a running simulator", async () => {
    const sim = await startSimulator({ answers: ReferenceAnswers.fromJsonl(jsonl) });
    try {
      const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
      const texts = [...gold.keys()].slice(100, 105);
      const items = texts.map((text, i) => ({ id: `i${i + 1}`, text }));
      const p = renderPrompt(classify, items);
      const res = await client.chat.completions.create({
        model: "gpt-4.1-mini",
        messages: [
          { role: "system", content: p.system },
          { role: "user", content: p.user },
        ],
        response_format: { type: "json_schema", json_schema: { name: "sieve_results", strict: true, schema: resultsJsonSchema(classify, items.map((i) => i.id)) } },
      });
      const parsed = JSON.parse(res.choices[0]!.message.content!) as { results: Array<{ id: string; label: string }> };
      assert.deepEqual(parsed.results.map((r) => r.label), texts.map((t) => gold.get(t)));
    } finally {
      await sim.close();
    }
  });
});
