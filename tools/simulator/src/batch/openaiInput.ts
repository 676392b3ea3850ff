/**
 * Validation of an OpenAI batch input file, as the Batch API does it while a batch is
 * `validating`: every problem becomes an `errors.data` entry (code, message, param, line) and the
 * batch ends `failed`; nothing is run. Codes as api.openai.com reports them (invalid_json_line,
 * duplicate_custom_id, url_mismatch, model_mismatch, empty_file, too_many_tasks, ...).
 */
import { isRecord } from "../http.js";

/** One entry of `errors.data`. */
export interface BatchErrorData {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface OpenAIRequest {
  customId: string;
  body: Record<string, unknown>;
}

/** Parses and validates an input file the way the Batch API does (errors, not exceptions). */
export function parseInputFile(content: Buffer, endpoint: string, limits: { maxRequests: number; maxBytes: number }): { requests: OpenAIRequest[]; model: string | undefined; errors: BatchErrorData[] } {
  const errors: BatchErrorData[] = [];
  const requests: OpenAIRequest[] = [];
  const add = (code: string, message: string, line: number | null, param: string | null = null) => {
    if (errors.length < 1000) errors.push({ code, message, param, line });
  };
  if (content.length > limits.maxBytes) {
    add("file_too_large", `The input file is ${content.length} bytes; the Batch API accepts at most ${limits.maxBytes} bytes per file.`, null);
    return { requests, model: undefined, errors };
  }
  const seen = new Set<string>();
  let model: string | undefined;
  const lines = content.toString("utf8").split("\n");
  lines.forEach((text, i) => {
    const n = i + 1;
    if (text.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return add("invalid_json_line", "This line is not parseable as valid JSON.", n);
    }
    if (!isRecord(v)) return add("invalid_json_line", "This line is not a JSON object.", n);
    if (typeof v.custom_id !== "string" || v.custom_id.length === 0) return add("missing_required_parameter", "Missing required parameter: 'custom_id'.", n, "custom_id");
    if (v.method !== "POST") return add("invalid_value", `Invalid value for 'method': ${JSON.stringify(v.method)}. Only POST is supported.`, n, "method");
    if (v.url !== endpoint) return add("url_mismatch", `The url ${JSON.stringify(v.url)} does not match the batch endpoint ${endpoint}.`, n, "url");
    if (!isRecord(v.body)) return add("missing_required_parameter", "Missing required parameter: 'body'.", n, "body");
    if (typeof v.body.model !== "string" || v.body.model === "") return add("missing_required_parameter", "Missing required parameter: 'body.model'.", n, "body.model");
    if (seen.has(v.custom_id)) return add("duplicate_custom_id", `The custom_id ${JSON.stringify(v.custom_id)} is used more than once in this file.`, n, "custom_id");
    model ??= v.body.model;
    if (v.body.model !== model) return add("model_mismatch", `Every request of a batch must use the same model: found ${JSON.stringify(v.body.model)} after ${JSON.stringify(model)}.`, n, "body.model");
    seen.add(v.custom_id);
    requests.push({ customId: v.custom_id, body: v.body });
  });
  if (requests.length === 0 && errors.length === 0) add("empty_file", "The input file is empty.", null);
  if (requests.length > limits.maxRequests) {
    add("too_many_tasks", `The input file has ${requests.length} requests; the Batch API accepts at most ${limits.maxRequests} per batch.`, null);
  }
  return { requests, model, errors };
}
