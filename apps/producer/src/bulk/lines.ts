/**
 * Splits a byte stream into lines without ever holding more than one line (plus one chunk) in
 * memory: the guarantee behind "memory stays flat however large the body". A line longer
 * than `maxLineBytes` is not kept: it is reported as `tooLong` and skipped up to its newline.
 */

export interface Line {
  /** 1-based line number in the stream. */
  no: number;
  /** The line without its "\n" (and without a trailing "\r"); empty when `tooLong`. */
  text: string;
  /** Bytes of the line (without the newline). */
  bytes: number;
  tooLong: boolean;
}

export async function* splitLines(source: AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  let no = 0;
  const emit = (): Line => {
    no++;
    let text = "";
    if (!tooLong) {
      const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      text = buf.toString("utf8");
      if (text.endsWith("\r")) text = text.slice(0, -1);
    }
    const line: Line = { no, text, bytes: size, tooLong };
    parts = [];
    size = 0;
    tooLong = false;
    return line;
  };
  for await (const chunk of source) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(10, start);
      const end = nl === -1 ? buf.length : nl;
      const piece = buf.subarray(start, end);
      if (!tooLong) {
        if (size + piece.length > maxLineBytes) {
          tooLong = true;
          parts = [];
        } else if (piece.length > 0) {
          // Copy: the stream may reuse its chunk buffers.
          parts.push(nl === -1 ? Buffer.from(piece) : piece);
        }
      }
      size += piece.length;
      if (nl === -1) break;
      yield emit();
      start = nl + 1;
    }
  }
  if (size > 0 || parts.length > 0 || tooLong) yield emit();
}
