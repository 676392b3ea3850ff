/**
 * The simulated "model": turns a JSON schema plus Sieve's prompt into a schema-valid answer with
 * exactly one entry per item. Pure and deterministic (the same text always gets the same label),
 * so callers can assert on answers and caches see stable outputs. Faults are applied elsewhere
 * (faults.ts) on top of this clean answer.
 */
import { resultsJsonSchema, type JsonSchema } from "@sieve/shared/tasks/output";
import type { EntriesLocation } from "./faults.js";
import type { ReferenceAnswers } from "./reference.js";
import { hash32, normalizeText } from "./text.js";

/** One item as Sieve's `userPrompt` writes it: `{"id":"i1","text":"..."}` on its own line. */
export interface SimItem {
  id: string;
  text: string;
}

/** Items of a user message: every line that is a JSON object with string `id` and `text`. */
export function parseItems(user: string): SimItem[] {
  const items: SimItem[] = [];
  for (const line of user.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const v = JSON.parse(t) as { id?: unknown; text?: unknown };
      if (typeof v.id === "string" && typeof v.text === "string") items.push({ id: v.id, text: v.text });
    } catch {
      // Not an item line (free text that happens to start with "{"): ignore it.
    }
  }
  return items;
}

/** The target language from Sieve's translate system prompt (`Target language: "de"`), else "xx". */
export function targetLanguageOf(system: string): string {
  return /Target language:\s*"([^"]+)"/.exec(system)?.[1] ?? "xx";
}

/** The labels listed under "Allowed labels" in Sieve's classify system prompt, if any. */
export function allowedLabelsOf(system: string): string[] | undefined {
  const lines = system.split("\n");
  const start = lines.findIndex((l) => l.startsWith("Allowed labels"));
  if (start < 0) return undefined;
  const labels: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^- (.+?)(?:: .*)?$/.exec(line);
    if (!m) break;
    labels.push(m[1]!);
  }
  return labels.length > 0 ? labels : undefined;
}

/**
 * A schema for requests that carry none (OpenAI `json_object`, Anthropic prefill): Sieve's
 * results schema when the system prompt is recognisably a Sieve prompt, else undefined.
 */
export function inferSchemaFromPrompt(system: string): JsonSchema | undefined {
  const labels = allowedLabelsOf(system);
  if (labels) return resultsJsonSchema({ task: "classify", labels });
  if (/Target language:\s*"/.test(system)) return resultsJsonSchema({ task: "translate", targetLanguage: targetLanguageOf(system) });
  return undefined;
}

/** The answer to a request with neither a schema nor a recognisable Sieve prompt. */
export const PLAIN_TEXT_ANSWER = "This is a simulated answer from the Sieve provider simulator (a test tool).";


/** The label a text always gets among `labels`. */
export function labelFor(text: string, labels: readonly unknown[]): unknown {
  return labels[hash32(normalizeText(text)) % labels.length];
}

export function translationFor(text: string, target: string): string {
  return `[sim→${target}] ${text}`;
}

type Schema = Record<string, unknown>;

interface FillContext {
  root: Schema;
  items: readonly SimItem[];
  target: string;
  item: SimItem | undefined;
  key: string | undefined;
  path: Array<string | number>;
  depth: number;
  /** Shared by the whole walk: set once, where the per-item entries array is generated. */
  found: { entries?: EntriesLocation };
}

/** Beyond this depth only required properties are filled. */
const OPTIONAL_DEPTH = 6;
/** Beyond this depth (a recursive schema) the walk stops with null. */
const MAX_DEPTH = 24;

function asSchema(v: unknown): Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Schema) : {};
}

/** Follows local `$ref`s (`#/$defs/X`, `#/definitions/X`) and merges `allOf` members shallowly. */
function resolve(schema: unknown, root: Schema, hops = 0): Schema {
  let s = asSchema(schema);
  if (typeof s.$ref === "string" && hops < 16) {
    const target = s.$ref === "#" ? root : pointer(root, s.$ref);
    const { $ref: _ref, ...rest } = s;
    s = { ...resolve(target, root, hops + 1), ...rest };
  }
  if (Array.isArray(s.allOf) && hops < 16) {
    const { allOf, ...rest } = s;
    let merged: Schema = {};
    for (const part of allOf) {
      const r = resolve(part, root, hops + 1);
      merged = {
        ...merged,
        ...r,
        properties: { ...asSchema(merged.properties), ...asSchema(r.properties) },
        required: [...((merged.required as unknown[]) ?? []), ...((r.required as unknown[]) ?? [])],
      };
    }
    s = { ...merged, ...rest };
  }
  return s;
}

function pointer(root: Schema, ref: string): unknown {
  if (!ref.startsWith("#/")) return {};
  let cur: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const k = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    cur = asSchema(cur)[k];
  }
  return cur;
}

function typeOf(s: Schema): string | undefined {
  if (Array.isArray(s.type)) return (s.type.find((t) => t !== "null") ?? s.type[0]) as string | undefined;
  if (typeof s.type === "string") return s.type;
  if (s.properties) return "object";
  if (s.items) return "array";
  return undefined;
}

function isEntryOfItems(s: Schema): boolean {
  return typeOf(s) === "object" && Object.prototype.hasOwnProperty.call(asSchema(s.properties), "id");
}

function itemHash(ctx: FillContext): number {
  const norm = normalizeText(ctx.item?.text ?? "");
  return hash32(ctx.key === "label" || ctx.key === undefined ? norm : `${ctx.key}\n${norm}`);
}

function fillEnum(values: unknown[], ctx: FillContext): unknown {
  if (ctx.item && ctx.key === "id" && values.includes(ctx.item.id)) return ctx.item.id;
  if (!ctx.item) return values[0];
  return values[itemHash(ctx) % values.length];
}

function fillString(s: Schema, ctx: FillContext): string {
  let v: string;
  if (ctx.item && ctx.key === "id") v = ctx.item.id;
  else if (ctx.item && ctx.key === "translation") v = translationFor(ctx.item.text, ctx.target);
  else if (s.format === "date-time") v = "2024-01-01T00:00:00Z";
  else if (s.format === "date") v = "2024-01-01";
  else if (s.format === "email") v = "sim@example.com";
  else if (s.format === "uri" || s.format === "url") v = "https://example.com/sim";
  else if (s.format === "uuid") v = "00000000-0000-4000-8000-000000000000";
  else v = "sim";
  if (typeof s.minLength === "number" && v.length < s.minLength) v = v.padEnd(s.minLength, "x");
  if (typeof s.maxLength === "number" && v.length > s.maxLength) v = v.slice(0, s.maxLength);
  return v;
}

function fillNumber(s: Schema, integer: boolean): number {
  let v = 0;
  if (typeof s.minimum === "number") v = s.minimum;
  if (typeof s.exclusiveMinimum === "number") v = s.exclusiveMinimum + (integer ? 1 : 0.5);
  if (typeof s.maximum === "number" && v > s.maximum) v = s.maximum;
  if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum) v = s.exclusiveMaximum - (integer ? 1 : 0.5);
  return integer ? Math.ceil(v) : v;
}

function fillObject(s: Schema, ctx: FillContext): Record<string, unknown> {
  const props = asSchema(s.properties);
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
  const out: Record<string, unknown> = {};
  for (const [k, ps] of Object.entries(props)) {
    if (!required.has(k) && ctx.depth >= OPTIONAL_DEPTH) continue;
    out[k] = fill(ps, { ...ctx, key: k, path: [...ctx.path, k], depth: ctx.depth + 1 });
  }
  return out;
}

function fillArray(s: Schema, ctx: FillContext): unknown[] {
  if (s.items === undefined) return [];
  const entry = resolve(s.items, ctx.root);
  // The per-item entries: one per item, in order, each filled with that item in context.
  if (!ctx.item && !ctx.found.entries && ctx.items.length > 0 && isEntryOfItems(entry)) {
    ctx.found.entries = { path: [...ctx.path], entrySchema: entry };
    return ctx.items.map((item, i) =>
      fill(entry, { ...ctx, item, key: undefined, path: [...ctx.path, i], depth: ctx.depth + 1 }),
    );
  }
  const min = typeof s.minItems === "number" ? s.minItems : 1;
  const max = typeof s.maxItems === "number" ? s.maxItems : Infinity;
  const n = Math.max(0, Math.min(Math.max(min, 1), max));
  return Array.from({ length: n }, (_, i) => fill(entry, { ...ctx, path: [...ctx.path, i], depth: ctx.depth + 1 }));
}

function fill(schema: unknown, ctx: FillContext): unknown {
  if (ctx.depth > MAX_DEPTH) return null;
  const s = resolve(schema, ctx.root);
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return fillEnum(s.enum, ctx);
  const branches = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
  if (branches && branches.length > 0) {
    const branch = branches.find((b) => resolve(b, ctx.root).type !== "null") ?? branches[0];
    return fill(branch, ctx);
  }
  switch (typeOf(s)) {
    case "object":
      return fillObject(s, ctx);
    case "array":
      return fillArray(s, ctx);
    case "string":
      return fillString(s, ctx);
    case "integer":
      return fillNumber(s, true);
    case "number":
      return fillNumber(s, false);
    case "boolean":
      return ctx.item ? (itemHash(ctx) & 1) === 1 : false;
    case "null":
      return null;
    default:
      return ctx.item && ctx.key === "id" ? ctx.item.id : "sim";
  }
}

export interface AnswerInput {
  /** The JSON schema the request carries (response_format / structured_outputs / tool input_schema). */
  schema: JsonSchema;
  /** The system prompt text (target language, labels). */
  system: string;
  /** The last user message text (the items). */
  user: string;
  /** Reference mode (reference.ts): known answers, with noise, replace synthetic ones. */
  reference?: ReferenceAnswers | undefined;
}

export interface GeneratedAnswer {
  /** A schema-valid value with one entry per item (before any fault). */
  value: unknown;
  items: SimItem[];
  /** Where the per-item entries are, when the schema has an array of objects with an `id`. */
  entries: EntriesLocation | undefined;
}

/**
 * Fills any JSON schema (object, array, string, enum, const, number, integer, boolean, null,
 * anyOf/oneOf, allOf, local $ref). The first array of objects with an `id` property gets one
 * entry per item, in item order, with `id` = the item id, enums chosen from a hash of the
 * normalised text, and `translation` = `[sim→<target>] <text>`.
 */
export function generateAnswer(input: AnswerInput): GeneratedAnswer {
  const items = parseItems(input.user);
  const root = asSchema(input.schema);
  const found: { entries?: EntriesLocation } = {};
  const value = fill(root, {
    root,
    items,
    target: targetLanguageOf(input.system),
    item: undefined,
    key: undefined,
    path: [],
    depth: 0,
    found,
  });
  if (input.reference && found.entries) applyReference(value, found.entries, items, input.reference, input.system);
  return { value, items, entries: found.entries };
}

/** Replaces each entry's label / translation with the reference answer, when the file has one. */
function applyReference(value: unknown, where: EntriesLocation, items: readonly SimItem[], ref: ReferenceAnswers, system: string): void {
  let entries: unknown = value;
  for (const k of where.path) entries = (entries as Record<string | number, unknown> | undefined)?.[k];
  if (!Array.isArray(entries)) return;
  const labelSchema = asSchema(asSchema(where.entrySchema.properties).label);
  const allowed = (Array.isArray(labelSchema.enum) ? labelSchema.enum : allowedLabelsOf(system) ?? []).filter((l): l is string => typeof l === "string");
  const target = targetLanguageOf(system);
  entries.forEach((entry: unknown, i) => {
    const item = items[i];
    if (!item || typeof entry !== "object" || entry === null) return;
    const e = entry as Record<string, unknown>;
    if ("label" in e) {
      const label = ref.label(item.text, allowed, items.length, i);
      if (label !== undefined) e.label = label;
    } else if ("translation" in e) {
      const t = ref.translation(item.text, target, items.length, i);
      if (t !== undefined) e.translation = t;
    }
  });
}
