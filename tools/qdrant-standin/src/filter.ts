/**
 * Qdrant payload filters, the subset Sieve uses, evaluated in memory. Semantics follow Qdrant's
 * docs ("Filtering"): `must` = all, `should` = at least one, `must_not` = none; a field condition
 * on an array payload value matches when any element matches. Anything else is rejected with
 * UnsupportedError rather than silently mis-evaluated.
 */

export type PointId = string | number;
export type Payload = Record<string, unknown>;

export class UnsupportedError extends Error {
  constructor(what: string) {
    super(`Qdrant stand-in does not implement ${what}`);
    this.name = "UnsupportedError";
  }
}

/** A request Qdrant itself would reject (400 "Wrong input"). */
export class WrongInputError extends Error {
  constructor(message: string) {
    super(`Wrong input: ${message}`);
    this.name = "WrongInputError";
  }
}

function asList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** A payload value at a dotted key ("a.b"); arrays along the way are flattened. */
export function valuesAt(payload: Payload, key: string): unknown[] {
  let current: unknown[] = [payload];
  for (const part of key.split(".")) {
    const next: unknown[] = [];
    for (const c of current) {
      if (c && typeof c === "object" && !Array.isArray(c) && part in (c as Record<string, unknown>)) {
        const v = (c as Record<string, unknown>)[part];
        if (Array.isArray(v)) next.push(...v);
        else next.push(v);
      }
    }
    current = next;
  }
  return current;
}

export function matchesFilter(filter: unknown, id: PointId, payload: Payload): boolean {
  if (filter === undefined || filter === null) return true;
  if (typeof filter !== "object" || Array.isArray(filter)) throw new WrongInputError("filter must be an object");
  const f = filter as Record<string, unknown>;
  for (const k of Object.keys(f)) {
    if (!["must", "should", "must_not", "min_should"].includes(k)) throw new WrongInputError(`unknown filter field "${k}"`);
  }
  if (f.min_should !== undefined && f.min_should !== null) throw new UnsupportedError("filter.min_should");
  const must = asList(f.must);
  const should = asList(f.should);
  const mustNot = asList(f.must_not);
  if (!must.every((c) => matchesCondition(c, id, payload))) return false;
  if (should.length > 0 && !should.some((c) => matchesCondition(c, id, payload))) return false;
  if (mustNot.some((c) => matchesCondition(c, id, payload))) return false;
  return true;
}

function matchesCondition(cond: unknown, id: PointId, payload: Payload): boolean {
  if (!cond || typeof cond !== "object" || Array.isArray(cond)) throw new WrongInputError("a condition must be an object");
  const c = cond as Record<string, unknown>;
  if ("must" in c || "should" in c || "must_not" in c || "min_should" in c) return matchesFilter(c, id, payload);
  if ("has_id" in c) {
    const ids = asList(c.has_id).map((x) => normaliseId(x));
    return ids.includes(id);
  }
  if ("is_empty" in c && typeof c.is_empty === "object" && c.is_empty !== null) {
    const key = (c.is_empty as { key?: unknown }).key;
    if (typeof key !== "string") throw new WrongInputError("is_empty.key must be a string");
    return valuesAt(payload, key).filter((v) => v !== null).length === 0;
  }
  if ("is_null" in c && typeof c.is_null === "object" && c.is_null !== null) {
    const key = (c.is_null as { key?: unknown }).key;
    if (typeof key !== "string") throw new WrongInputError("is_null.key must be a string");
    const vs = valuesAt(payload, key);
    return vs.length === 1 && vs[0] === null;
  }
  if (typeof c.key !== "string") throw new UnsupportedError(`condition ${JSON.stringify(Object.keys(c))}`);
  const values = valuesAt(payload, c.key);
  let any = false;
  if (c.match !== undefined && c.match !== null) {
    any = true;
    if (!matchesMatch(c.match, values)) return false;
  }
  if (c.range !== undefined && c.range !== null) {
    any = true;
    if (!matchesRange(c.range, values)) return false;
  }
  for (const k of ["geo_bounding_box", "geo_radius", "geo_polygon", "values_count", "is_empty", "is_null"]) {
    if (c[k] !== undefined && c[k] !== null) throw new UnsupportedError(`field condition "${k}"`);
  }
  if (!any) throw new WrongInputError(`condition on "${c.key}" has no match or range`);
  return true;
}

function matchesMatch(match: unknown, values: unknown[]): boolean {
  if (typeof match !== "object" || match === null) throw new WrongInputError("match must be an object");
  const m = match as Record<string, unknown>;
  if ("value" in m) {
    const v = m.value;
    if (!["string", "number", "boolean"].includes(typeof v)) throw new WrongInputError("match.value must be a string, number or boolean");
    return values.some((x) => x === v);
  }
  if ("any" in m && Array.isArray(m.any)) return values.some((x) => (m.any as unknown[]).includes(x));
  if ("except" in m && Array.isArray(m.except)) return values.length > 0 && values.every((x) => !(m.except as unknown[]).includes(x));
  throw new UnsupportedError(`match ${JSON.stringify(Object.keys(m))}`);
}

function matchesRange(range: unknown, values: unknown[]): boolean {
  if (typeof range !== "object" || range === null) throw new WrongInputError("range must be an object");
  const r = range as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!["gt", "gte", "lt", "lte"].includes(k)) throw new UnsupportedError(`range.${k} (datetime ranges)`);
    if (r[k] !== null && typeof r[k] !== "number") throw new UnsupportedError(`non-numeric range.${k}`);
  }
  const num = (k: string): number | undefined => (typeof r[k] === "number" ? (r[k] as number) : undefined);
  const gt = num("gt");
  const gte = num("gte");
  const lt = num("lt");
  const lte = num("lte");
  return values.some(
    (x) =>
      typeof x === "number" &&
      (gt === undefined || x > gt) &&
      (gte === undefined || x >= gte) &&
      (lt === undefined || x < lt) &&
      (lte === undefined || x <= lte),
  );
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Qdrant point ids: unsigned integers or UUIDs (returned in lower-case hyphenated form). */
export function normaliseId(id: unknown): PointId {
  if (typeof id === "number") {
    if (!Number.isSafeInteger(id) || id < 0) throw new WrongInputError(`point id ${id} is not an unsigned integer`);
    return id;
  }
  if (typeof id === "string" && UUID_RE.test(id)) {
    const h = id.replace(/-/g, "").toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  throw new WrongInputError(`Unable to parse point id ${JSON.stringify(id)}: expected an unsigned integer or a UUID`);
}
