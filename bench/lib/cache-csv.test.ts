import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseCsv } from "./cache-csv.js";

describe("parseCsv (RFC 4180)", () => {
  it("parses quotes, escaped quotes, embedded commas and line breaks, CRLF", () => {
    const text = 'id,text\r\n1,"a, b"\r\n2,"say ""hi"""\n3,"line1\nline2"\n4,plain\n5,\n';
    assert.deepEqual(parseCsv(text), [
      ["id", "text"],
      ["1", "a, b"],
      ["2", 'say "hi"'],
      ["3", "line1\nline2"],
      ["4", "plain"],
      ["5", ""],
    ]);
  });
  it("handles a missing final newline and empty quoted fields", () => {
    assert.deepEqual(parseCsv('a,b\n"",x'), [
      ["a", "b"],
      ["", "x"],
    ]);
  });
  it("rejects malformed quoting", () => {
    assert.throws(() => parseCsv('a\n"open'), /unterminated/);
    assert.throws(() => parseCsv('a\nx"y'), /quote inside/);
    assert.throws(() => parseCsv('a\n"x"y'), /after a closing quote/);
  });
});
