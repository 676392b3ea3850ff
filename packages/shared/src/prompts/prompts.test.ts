import { test } from "node:test";
import assert from "node:assert/strict";
import { renderPrompt, systemPrompt, userPrompt } from "./index.js";

test("system prompt has Role, Context and Task, and lists the labels", () => {
  const s = systemPrompt({ task: "classify", labels: ["billing", "sales"], labelDescriptions: { billing: "invoices and payments" } });
  assert.ok(s.indexOf("# Role") < s.indexOf("# Context") && s.indexOf("# Context") < s.indexOf("# Task"));
  assert.match(s, /- billing: invoices and payments/);
  assert.match(s, /- sales/);
});

test("the system prompt (cached prefix) does not depend on the items", () => {
  const p = { task: "translate", targetLanguage: "de" } as const;
  assert.equal(renderPrompt(p, [{ id: "i1", text: "a" }]).system, renderPrompt(p, [{ id: "i1", text: "b" }, { id: "i2", text: "c" }]).system);
});

test("items are one JSON object per line, so quotes and newlines cannot break boundaries", () => {
  const u = userPrompt([{ id: "i1", text: 'say "hi"\nthen go' }]);
  const line = u.split("\n")[1]!;
  assert.deepEqual(JSON.parse(line), { id: "i1", text: 'say "hi"\nthen go' });
});
