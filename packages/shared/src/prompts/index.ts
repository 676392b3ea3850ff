/**
 * Every prompt Sieve sends, versioned, in one place. Shape: Role - Context - Task (RCT, see
 * the design notes in shared/seeds, chapter 10 "Prompt Engineering").
 *
 * The system prompt is the STABLE prefix: it depends only on the task parameters, never on the
 * items, so providers can cache it (Anthropic `cache_control`, OpenAI/vLLM automatic prefix caching).
 * Items go in the user message. Changing any text here means bumping the version: the version is
 * part of every batch key and cache key, so old cached answers are never served for a new prompt.
 */
import type { ClassifyParams, TaskParams, TranslateParams } from "../tasks/params.js";
import { assertExhaustive } from "../errors.js";

export const PROMPT_VERSIONS = { classify: "classify.v1", translate: "translate.v1" } as const;

export interface RenderedPrompt {
  /** Stable across calls that share a batch key. */
  system: string;
  /** Carries the items of one call. */
  user: string;
}

export interface PromptItem {
  /** Short server-assigned id, unique within one call ("i1", "i2", ...). */
  id: string;
  text: string;
}

function classifySystem(p: ClassifyParams): string {
  const labelLines = p.labels.map((l) => {
    const d = p.labelDescriptions?.[l];
    return d ? `- ${l}: ${d}` : `- ${l}`;
  });
  return [
    "# Role",
    "You are a meticulous text classifier working in a high-volume pipeline. You answer only with the requested JSON.",
    "",
    "# Context",
    "Allowed labels (use them exactly as written):",
    ...labelLines,
    ...(p.instructions ? ["", "Additional instructions from the caller:", p.instructions] : []),
    "",
    "# Task",
    "You receive several items, each with an id and a text. Classify every item independently into exactly one of the allowed labels.",
    "Return one entry per item id: every id exactly once, no other ids, in any order.",
    'Answer with a JSON object {"results": [{"id": "<item id>", "label": "<one allowed label>"}, ...]}.',
  ].join("\n");
}

function translateSystem(p: TranslateParams): string {
  const from = p.sourceLanguage ? `from language "${p.sourceLanguage}" ` : "";
  return [
    "# Role",
    "You are a professional translator working in a high-volume pipeline. You answer only with the requested JSON.",
    "",
    "# Context",
    `Target language: "${p.targetLanguage}".${p.sourceLanguage ? ` Source language: "${p.sourceLanguage}".` : " Detect the source language of each item."}`,
    "Keep names, numbers, URLs, @handles, hashtags and emoji as they are. Keep the register and tone of the source.",
    ...(p.instructions ? ["", "Additional instructions from the caller:", p.instructions] : []),
    "",
    "# Task",
    `You receive several items, each with an id and a text. Translate every item independently ${from}into "${p.targetLanguage}".`,
    "Return one entry per item id: every id exactly once, no other ids, in any order.",
    'Answer with a JSON object {"results": [{"id": "<item id>", "translation": "<translated text>"}, ...]}.',
  ].join("\n");
}

export function systemPrompt(params: TaskParams): string {
  switch (params.task) {
    case "classify":
      return classifySystem(params);
    case "translate":
      return translateSystem(params);
    default:
      return assertExhaustive(params);
  }
}

/** Items as JSON lines: unambiguous boundaries even when a text holds quotes or newlines. */
export function userPrompt(items: readonly PromptItem[]): string {
  return ["Items (one JSON object per line):", ...items.map((i) => JSON.stringify({ id: i.id, text: i.text }))].join("\n");
}

export function renderPrompt(params: TaskParams, items: readonly PromptItem[]): RenderedPrompt {
  return { system: systemPrompt(params), user: userPrompt(items) };
}
