/**
 * CSRF protection for the console's POST actions: a per-browser random token in a SameSite=Strict,
 * HttpOnly cookie, repeated in a hidden form field (double submit), plus an Origin check when the
 * browser sends one. A cross-site form can neither read the cookie nor make the browser send it.
 * See https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { html, type Raw } from "./html.js";

const COOKIE = "sieve_csrf";

function readCookie(req: Request): string | undefined {
  const raw = req.header("cookie") ?? "";
  for (const part of raw.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return v.join("=");
  }
  return undefined;
}

/** Ensures the browser has a token (set on GET pages) and exposes it as res.locals.csrf. */
export function csrfToken(req: Request, res: Response, next: NextFunction): void {
  let t = readCookie(req);
  if (!t || !/^[a-f0-9]{64}$/.test(t)) {
    t = randomBytes(32).toString("hex");
    res.append("Set-Cookie", `${COOKIE}=${t}; Path=/admin; HttpOnly; SameSite=Strict`);
  }
  res.locals.csrf = t;
  next();
}

/** Hidden form field carrying the token. */
export function csrfField(res: Response): Raw {
  return html`<input type="hidden" name="_csrf" value="${String(res.locals.csrf ?? "")}">`;
}

/** Rejects a POST whose form token does not match its cookie, or whose Origin is another site. */
export function csrfCheck(req: Request, res: Response, next: NextFunction): void {
  const origin = req.header("origin");
  if (origin && origin !== "null") {
    const host = req.header("host");
    let ok = false;
    try {
      ok = new URL(origin).host === host;
    } catch {
      ok = false;
    }
    if (!ok) {
      res.status(403).json({ error: { code: "csrf", message: "origin: the request came from another site" } });
      return;
    }
  }
  const cookie = readCookie(req) ?? "";
  const given = typeof req.body?._csrf === "string" ? (req.body._csrf as string) : "";
  const a = Buffer.from(cookie);
  const b = Buffer.from(given);
  if (a.length === 0 || a.length !== b.length || !timingSafeEqual(a, b)) {
    res.status(403).json({ error: { code: "csrf", message: "_csrf: missing or wrong form token; reload the page and try again" } });
    return;
  }
  next();
}
