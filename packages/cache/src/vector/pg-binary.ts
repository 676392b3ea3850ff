/**
 * PostgreSQL binary COPY encoding for the semantic_cache staging table. Parsing 512 floats of
 * text per row costs ~1 ms in PGlite's WASM build (strtof); binary COPY (pgvector's vector_recv)
 * is ~10x faster, which matters for bulk fills. Format: PostgreSQL docs, "COPY ... Binary Format";
 * vector: pgvector's vector_send (int16 dim, int16 unused, float4[dim], all big-endian).
 */

export type CopyValue =
  | { kind: "text"; value: string }
  | { kind: "int8"; value: number | null }
  | { kind: "jsonb"; value: string }
  | { kind: "vector"; value: number[] };

const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]; // "PGCOPY\n\377\r\n\0"
const encoder = new TextEncoder();

/** One binary COPY payload (header, rows, trailer) for rows of the given column values. */
export function encodeBinaryCopy(rows: CopyValue[][]): Blob {
  const parts: Uint8Array[] = [];
  const header = new Uint8Array(SIGNATURE.length + 8); // + int32 flags + int32 header-extension length, both 0
  header.set(SIGNATURE, 0);
  parts.push(header);
  for (const row of rows) {
    const fields = row.map(encodeField);
    let size = 2;
    for (const f of fields) size += 4 + (f ? f.length : 0);
    const buf = new Uint8Array(size);
    const dv = new DataView(buf.buffer);
    dv.setInt16(0, row.length);
    let o = 2;
    for (const f of fields) {
      if (!f) {
        dv.setInt32(o, -1);
        o += 4;
        continue;
      }
      dv.setInt32(o, f.length);
      o += 4;
      buf.set(f, o);
      o += f.length;
    }
    parts.push(buf);
  }
  const trailer = new Uint8Array(2);
  new DataView(trailer.buffer).setInt16(0, -1);
  parts.push(trailer);
  return new Blob(parts);
}

function encodeField(v: CopyValue): Uint8Array | null {
  switch (v.kind) {
    case "text":
      return encoder.encode(v.value);
    case "int8": {
      if (v.value === null) return null;
      if (!Number.isSafeInteger(v.value)) throw new RangeError(`not a safe integer: ${v.value}`);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, BigInt(v.value));
      return b;
    }
    case "jsonb": {
      // jsonb binary format: a version byte (1) followed by the JSON text.
      const text = encoder.encode(v.value);
      const b = new Uint8Array(1 + text.length);
      b[0] = 1;
      b.set(text, 1);
      return b;
    }
    case "vector": {
      const b = new Uint8Array(4 + 4 * v.value.length);
      const dv = new DataView(b.buffer);
      dv.setInt16(0, v.value.length);
      dv.setInt16(2, 0);
      for (let i = 0; i < v.value.length; i++) dv.setFloat32(4 + 4 * i, v.value[i]!);
      return b;
    }
  }
}
