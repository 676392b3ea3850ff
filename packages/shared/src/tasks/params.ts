import { z } from "zod";

/** Limits on task parameters. Each is enforced with a 400 that names the field. */
export const PARAM_LIMITS = {
  /** Fewest labels a classify task may have. */
  minLabels: 2,
  /** Most labels a classify task may have. */
  maxLabels: 200,
  /** Longest label, in characters. */
  maxLabelLength: 64,
  /** Longest free-text instruction a caller may add, in characters. */
  maxInstructionsLength: 2_000,
} as const;

const Label = z
  .string()
  .trim()
  .min(1, "a label must not be empty")
  .max(PARAM_LIMITS.maxLabelLength, `a label is at most ${PARAM_LIMITS.maxLabelLength} characters`);

export const ClassifyParams = z.object({
  task: z.literal("classify"),
  labels: z
    .array(Label)
    .min(PARAM_LIMITS.minLabels, `at least ${PARAM_LIMITS.minLabels} labels are required`)
    .max(PARAM_LIMITS.maxLabels, `at most ${PARAM_LIMITS.maxLabels} labels are allowed`)
    .refine((labels) => new Set(labels).size === labels.length, "labels must be unique"),
  /** Optional one-line description per label, keyed by label: part of the stable (cached) prompt prefix. */
  labelDescriptions: z.record(z.string(), z.string().max(500)).optional(),
  instructions: z.string().max(PARAM_LIMITS.maxInstructionsLength).optional(),
});
export type ClassifyParams = z.infer<typeof ClassifyParams>;

/** BCP-47-ish language tag: "de", "pt-BR", "zh-Hant". */
const LanguageTag = z
  .string()
  .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, "must be a language tag such as \"de\" or \"pt-BR\"");

export const TranslateParams = z.object({
  task: z.literal("translate"),
  targetLanguage: LanguageTag,
  sourceLanguage: LanguageTag.optional(),
  instructions: z.string().max(PARAM_LIMITS.maxInstructionsLength).optional(),
});
export type TranslateParams = z.infer<typeof TranslateParams>;

export const TaskParams = z.discriminatedUnion("task", [ClassifyParams, TranslateParams]);
export type TaskParams = z.infer<typeof TaskParams>;
export type TaskName = TaskParams["task"];
export const TASK_NAMES: readonly TaskName[] = ["classify", "translate"];
