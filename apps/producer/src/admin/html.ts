/**
 * Server-rendered HTML for the operator console: an escaping tagged template and the page layout.
 * Every asset (CSS, uPlot, the chart script) is served by Sieve itself under /admin/assets.
 */

export class Raw {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESC: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function esc(v: unknown): string {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]!);
}

function part(v: unknown): string {
  if (v instanceof Raw) return v.value;
  if (Array.isArray(v)) return v.map(part).join("");
  if (v === undefined || v === null || v === false) return "";
  return esc(v);
}

/** `html\`<p>${userText}</p>\``: interpolations are escaped unless they are Raw (or arrays of Raw). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!;
  return new Raw(out);
}

/** JSON for a <script type="application/json"> block (no "</script>" breakout). */
export function jsonScript(id: string, data: unknown): Raw {
  return new Raw(`<script type="application/json" id="${esc(id)}">${JSON.stringify(data).replace(/</g, "\\u003c")}</script>`);
}

export const NAV = [
  ["overview", "/admin", "Overview"],
  ["jobs", "/admin/jobs", "Jobs"],
  ["batches", "/admin/batches", "Batches"],
  ["lanes", "/admin/lanes", "Lanes & engines"],
  ["tenants", "/admin/tenants", "Tenants"],
  ["queues", "/admin/queues", "Queues (Bull Board)"],
] as const;

export function layout(opts: { title: string; active: string; body: Raw; charts?: boolean; flash?: string | undefined }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(opts.title)} · Sieve console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/assets/console.css">
${opts.charts ? '<link rel="stylesheet" href="/admin/assets/uPlot.min.css"><script src="/admin/assets/uPlot.iife.min.js" defer></script><script src="/admin/assets/charts.js" defer></script>' : ""}
</head><body>
<header><a class="brand" href="/admin">Sieve</a><nav>${NAV.map(([k, href, label]) => `<a href="${href}"${k === opts.active ? ' class="active"' : ""}>${esc(label)}</a>`).join("")}</nav></header>
<main>${opts.flash ? `<p class="flash">${esc(opts.flash)}</p>` : ""}<h1>${esc(opts.title)}</h1>${opts.body.value}</main>
</body></html>`;
}

export const usd = (n: number): string => (Math.abs(n) >= 1 ? `$${n.toFixed(2)}` : Math.abs(n) >= 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(6)}`);
export const int = (n: number): string => Math.round(n).toLocaleString("en-US");
export const pct = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? "–" : `${(n * 100).toFixed(1)}%`);
export const ms = (n: number | null | undefined): string => (n === null || n === undefined ? "–" : n >= 10_000 ? `${(n / 1000).toFixed(0)} s` : `${Math.round(n)} ms`);
export const when = (d: Date | string | null | undefined): string => (d ? new Date(d).toISOString().replace("T", " ").slice(0, 19) : "–");

/** Bad input on a console page: 400 naming the field (house rule: never a silent default or a 500). */
export class BadParam extends Error {
  constructor(
    readonly field: string,
    readonly hint: string,
  ) {
    super(`${field}: ${hint}`);
  }
}
