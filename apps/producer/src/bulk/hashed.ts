/**
 * A body stream that hashes every byte it hands on (the fingerprint of a bulk upload's
 * Idempotency-Key). `drain()` reads (and hashes) the rest without keeping it: a replayed upload is
 * compared with the first one without being stored again, and a refused upload is read off the
 * connection so the client, still sending, gets to read the answer.
 */
import { createHash, type Hash } from "node:crypto";

export class HashedBody implements AsyncIterable<Buffer | string> {
  private readonly hash: Hash | undefined;
  private readonly it: AsyncIterator<Buffer | string>;

  /** `hash: false`: a plain pass-through (no Idempotency-Key to fingerprint). */
  constructor(source: AsyncIterable<Buffer | string>, opts: { hash?: boolean } = {}) {
    this.it = source[Symbol.asyncIterator]();
    this.hash = opts.hash === false ? undefined : createHash("sha256");
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer | string> {
    // Not `for await` over the source: leaving this loop early must not close the request, so
    // drain() can still read the rest.
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      this.hash?.update(r.value);
      yield r.value;
    }
  }

  /** Reads (and hashes) what is left of the body; returns the hash of every byte. */
  async drain(): Promise<string> {
    for (;;) {
      const r = await this.it.next();
      if (r.done) break;
      this.hash?.update(r.value);
    }
    return this.hash ? this.digest() : "";
  }

  /** Hex SHA-256 of the bytes read so far (call once, after the body has ended). */
  digest(): string {
    if (!this.hash) throw new Error("HashedBody: constructed without a hash");
    return this.hash.digest("hex");
  }
}
