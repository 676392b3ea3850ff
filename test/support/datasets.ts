/** Reads the shared evaluation datasets (../shared/datasets) with a small RFC-4180 CSV parser. */
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const DATASETS_DIR = process.env.SIEVE_DATASETS_DIR ?? path.resolve(fileURLToPath(new URL("../../../shared/datasets", import.meta.url)));

export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export function readCsvObjects(file: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(readFileSync(file, "utf8"));
  return rows.filter((r) => r.length === header!.length).map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

/** AG News titles+descriptions, as classify items. */
export function agNewsItems(limit?: number): Array<{ id: string; text: string; label: string }> {
  const file = path.join(DATASETS_DIR, "ag_news_test", "ag_news_test.csv");
  if (!existsSync(file)) throw new Error(`dataset not found: ${file} (set SIEVE_DATASETS_DIR)`);
  const rows = readCsvObjects(file).slice(0, limit);
  return rows.map((r) => ({ id: `ag-${r.id}`, text: `${r.title}. ${r.description}`.replace(/\\/g, " "), label: r.label_name! }));
}
