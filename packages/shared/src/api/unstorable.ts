/**
 * Text Postgres cannot store: U+0000 is refused in `text` and `jsonb` ("invalid byte sequence for
 * encoding UTF8: 0x00", https://www.postgresql.org/docs/current/datatype-character.html), and a
 * lone UTF-16 surrogate is either refused by `jsonb` (an unpaired "\ud800" escape) or silently
 * turned into U+FFFD on its way to a `text` column. Both are refused at the door with a 400 that
 * names the field, before anything is written.
 */
import { HttpError } from "../errors.js";
import { fieldPath } from "./schemas.js";

// A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a string, or undefined when Postgres can store it. */
export function unstorableReason(s: string): string | undefined {
  const m = UNSTORABLE.exec(s);
  if (!m) return undefined;
  const c = m[0].charCodeAt(0);
  return c === 0 ? "contains U+0000" : `contains a lone UTF-16 surrogate (U+${c.toString(16).toUpperCase()})`;
}

export interface UnstorableField {
  /** "items[3].text", "labelDescriptions" ... */
  field: string;
  message: string;
}

/** The first string (value or object key) in a JSON value that Postgres cannot store. */
export function findUnstorable(value: unknown, path: Array<string | number> = []): UnstorableField | undefined {
  if (typeof value === "string") {
    const why = unstorableReason(value);
    return why ? { field: fieldPath(path), message: why } : undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const why = unstorableReason(k);
      // The key itself cannot be echoed as a field name: name the object and say it is a key.
      if (why) return { field: fieldPath(path), message: `a key ${why}` };
      const found = findUnstorable(v, [...path, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/** Throws a 400 naming the first field Postgres could not store. */
export function rejectUnstorable(value: unknown, path: Array<string | number> = []): void {
  const found = findUnstorable(value, path);
  if (found) throw new HttpError(400, "invalid_request", `${found.field}: ${found.message}`, [{ field: found.field, message: found.message }]);
}
