/**
 * A small RFC 4180 CSV parser for the benchmark datasets: quoted fields, "" escapes, commas and
 * line breaks (LF or CRLF) inside quotes, a header row. No dependencies.
 */
import { readFileSync } from "node:fs";

/** Rows of fields. Throws on an unterminated quote or a stray quote inside an unquoted field. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let i = 0;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1; // BOM
  let quoted = false;
  let fieldStarted = false;
  while (i < n) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== "," && next !== "\n" && next !== "\r") {
          throw new Error(`CSV: unexpected character ${JSON.stringify(next)} after a closing quote (row ${rows.length + 1})`);
        }
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (fieldStarted) throw new Error(`CSV: quote inside an unquoted field (row ${rows.length + 1})`);
      quoted = true;
      fieldStarted = true;
      i++;
      continue;
    }
    if (c === ",") {
      row.push(field);
      field = "";
      fieldStarted = false;
      i++;
      continue;
    }
    if (c === "\r" || c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      fieldStarted = false;
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    field += c;
    fieldStarted = true;
    i++;
  }
  if (quoted) throw new Error("CSV: unterminated quoted field at end of input");
  if (fieldStarted || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Records keyed by the header row; every row must have the header's number of fields. */
export function readCsv(path: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(readFileSync(path, "utf8"));
  if (!header) return [];
  return rows.map((r, k) => {
    if (r.length !== header.length) throw new Error(`${path}: row ${k + 2} has ${r.length} fields, header has ${header.length}`);
    return Object.fromEntries(header.map((h, j) => [h, r[j]!]));
  });
}
