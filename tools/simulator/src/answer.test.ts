import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { renderPrompt } from "@sieve/shared/prompts/index";
import { resultsJsonSchema, validateResults } from "@sieve/shared/tasks/output";
import type { TaskParams } from "@sieve/shared/tasks/params";
import { generateAnswer, inferSchemaFromPrompt, labelFor, parseItems, targetLanguageOf } from "./answer.js";

const classify: TaskParams = { task: "classify", labels: ["World", "Sports", "Business", "Sci/Tech"] };
const translate: TaskParams = { task: "translate", targetLanguage: "de" };
const items = [
  { id: "i1", text: "Stocks rallied on Friday." },
  { id: "i2", text: 'A "quoted"\nmultiline text' },
  { id: "i3", text: "The match ended 2-1." },
];

function answerFor(params: TaskParams, withIds: boolean) {
  const p = renderPrompt(params, items);
  const schema = resultsJsonSchema(params, withIds ? items.map((i) => i.id) : undefined);
  return generateAnswer({ schema, system: p.system, user: p.user });
}

describe("answer generator", () => {
  test("parses Sieve's user prompt, including quotes and newlines in texts", () => {
    assert.deepEqual(parseItems(renderPrompt(classify, items).user), items);
  });

  test("classify: exactly one valid entry per id, in item order, for both schema variants", () => {
    for (const withIds of [true, false]) {
      const a = answerFor(classify, withIds);
      const v = validateResults(classify, items.map((i) => i.id), a.value);
      assert.equal(v.ok.size, 3);
      assert.equal(v.failed.size, 0);
      assert.deepEqual((a.value as { results: Array<{ id: string }> }).results.map((r) => r.id), ["i1", "i2", "i3"]);
      assert.deepEqual(a.entries?.path, ["results"]);
    }
  });

  test("the label depends only on the normalised text", () => {
    const labels = ["a", "b", "c", "d", "e", "f", "g"];
    assert.equal(labelFor("Hello   World", labels), labelFor("  hello world ", labels));
    const p = renderPrompt(classify, [{ id: "x9", text: "HELLO world" }]);
    const a = generateAnswer({ schema: resultsJsonSchema(classify), system: p.system, user: p.user });
    const label = (a.value as { results: Array<{ label: string }> }).results[0]!.label;
    assert.equal(label, labelFor("hello   world", (classify as { labels: string[] }).labels));
    // Different texts spread over the labels.
    const seen = new Set(Array.from({ length: 50 }, (_, i) => labelFor(`text number ${i}`, labels)));
    assert.ok(seen.size >= 5);
  });

  test("translate: tagged with the target language from the system prompt", () => {
    const a = answerFor(translate, true);
    const results = (a.value as { results: Array<{ id: string; translation: string }> }).results;
    assert.equal(results[0]!.translation, "[sim→de] Stocks rallied on Friday.");
    assert.equal(validateResults(translate, items.map((i) => i.id), a.value).ok.size, 3);
    assert.equal(targetLanguageOf("no target here"), "xx");
  });

  test("fills arbitrary schemas: nested objects, enums, numbers, booleans, nullable, $ref, allOf", () => {
    const schema = {
      type: "object",
      $defs: { Score: { type: "integer", minimum: 3, maximum: 9 } },
      properties: {
        title: { type: "string", minLength: 5 },
        when: { type: "string", format: "date-time" },
        mood: { enum: ["happy", "sad"] },
        score: { $ref: "#/$defs/Score" },
        ratio: { type: "number", exclusiveMinimum: 0 },
        flag: { type: "boolean" },
        maybe: { anyOf: [{ type: "null" }, { type: "string" }] },
        tags: { type: "array", items: { type: "string" }, minItems: 2 },
        merged: { allOf: [{ type: "object", properties: { a: { type: "string" } } }, { properties: { b: { const: 7 } } }] },
        version: { const: "v1" },
      },
      required: ["title"],
    };
    const a = generateAnswer({ schema, system: "", user: "" });
    assert.deepEqual(a.value, {
      title: "simxx",
      when: "2024-01-01T00:00:00Z",
      mood: "happy",
      score: 3,
      ratio: 0.5,
      flag: false,
      maybe: "sim",
      tags: ["sim", "sim"],
      merged: { a: "sim", b: 7 },
      version: "v1",
    });
    assert.equal(a.entries, undefined);
  });

  test("one entry per item for any array of objects with an id, wherever it sits", () => {
    const schema = {
      type: "object",
      properties: {
        meta: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] },
        data: {
          type: "object",
          properties: {
            answers: {
              type: "array",
              items: { type: "object", properties: { id: { type: "string" }, score: { type: "number", minimum: 1 }, ok: { type: "boolean" } } },
            },
          },
        },
      },
    };
    const a = generateAnswer({ schema, system: "", user: renderPrompt(classify, items).user });
    const answers = (a.value as { data: { answers: Array<{ id: string; score: number; ok: boolean }> } }).data.answers;
    assert.deepEqual(answers.map((x) => x.id), ["i1", "i2", "i3"]);
    assert.ok(answers.every((x) => x.score === 1 && typeof x.ok === "boolean"));
    assert.deepEqual(a.entries?.path, ["data", "answers"]);
  });

  test("a recursive schema terminates", () => {
    const schema = { $ref: "#/$defs/Node", $defs: { Node: { type: "object", properties: { child: { $ref: "#/$defs/Node" } }, required: ["child"] } } };
    assert.doesNotThrow(() => JSON.stringify(generateAnswer({ schema, system: "", user: "" }).value));
  });

  test("infers Sieve's schema from the system prompt when the request carries none", () => {
    const labels = (classify as { labels: string[] }).labels;
    const c = inferSchemaFromPrompt(renderPrompt({ ...classify, labelDescriptions: { World: "news: politics, world" } }, items).system);
    assert.deepEqual(c, resultsJsonSchema({ task: "classify", labels }));
    assert.deepEqual(inferSchemaFromPrompt(renderPrompt(translate, items).system), resultsJsonSchema(translate));
    assert.equal(inferSchemaFromPrompt("You are a helpful assistant."), undefined);
  });
});
