/**
 * HTTP for the CLI. Uploads use node:http rather than fetch: a server may answer (a 400 about the
 * header line, a 413) while a large body is still being sent and then close the connection; fetch
 * reports that as "fetch failed" and loses the answer, node:http hands the answer over as soon as
 * it arrives. Failures that never produced an answer are NetworkErrors (the caller may retry).
 */
import http from "node:http";
import https from "node:https";

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** No answer came back (connection refused, reset, cut): the request may or may not have been processed. */
export class NetworkError extends Error {
  constructor(url: string, cause: unknown) {
    const c = cause as { code?: string; message?: string };
    super(`no answer from ${new URL(url).origin}: ${c?.code ?? c?.message ?? String(cause)}`);
    this.name = "NetworkError";
  }
}

/** POSTs a streamed body; resolves with the server's answer even if it comes before the body is sent. */
export function streamPost(url: string, headers: Record<string, string>, body: AsyncIterable<Uint8Array>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    let answered = false;
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(new NetworkError(url, e));
    };
    const req = (u.protocol === "https:" ? https : http).request(u, { method: "POST", headers }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      const done = () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString("utf8") });
      };
      res.on("end", done);
      // The server may close right after its answer: what arrived is the answer.
      res.on("error", () => (parts.length > 0 ? done() : fail(new Error("answer cut off"))));
      res.on("aborted", () => (parts.length > 0 ? done() : fail(new Error("answer cut off"))));
    });
    // Writing into a connection the server closed after answering fails: the answer counts.
    req.on("error", (e) => {
      if (!answered) fail(e);
    });
    (async () => {
      for await (const chunk of body) {
        if (answered || req.destroyed) return;
        if (!req.write(chunk)) {
          await new Promise<void>((r) => {
            const go = () => {
              req.off("drain", go);
              req.off("close", go);
              r();
            };
            req.on("drain", go);
            req.on("close", go);
          });
        }
      }
      if (!answered && !req.destroyed) req.end();
    })().catch((e: unknown) => req.destroy(e as Error));
  });
}

/** GET/POST without a body via fetch; a request that got no answer is a NetworkError. */
export async function call(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new NetworkError(url, (e as { cause?: unknown }).cause ?? e);
  }
}
