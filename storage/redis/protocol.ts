/**
 * @module
 * RESP2 on the wire: commands encoded with byte lengths (given in parts, never copied
 * together), replies decoded once all of their bytes have arrived.
 */

/** An error reply from Redis (`-ERR ...`, `-NOSCRIPT ...`): the command ran, or was refused. */
export class ReplyError extends Error {
  override name = "ReplyError";
  /** The error's code: the first word of the reply (`ERR`, `NOSCRIPT`, `WRONGTYPE`, ...). */
  readonly code: string;

  /** The error reply `text` (without its leading `-`). */
  constructor(text: string) {
    super(text);
    this.code = text.split(" ", 1)[0];
  }
}

/** A decoded reply: bulk and simple strings, integers, nil, arrays (error replies reject). */
export type Reply = string | number | null | Reply[];

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CR = 13;

/**
 * RESP2 encoding of a command given in one or more parts (its arguments in order); the byte
 * counts are character counts when all is ASCII.
 */
export function encode(parts: readonly (readonly string[])[]): Uint8Array {
  return encodeText(frame(parts, false), parts);
}

/** `text` (parts framed with character counts) as bytes, framed again when not all ASCII. */
export function encodeText(text: string, parts: readonly (readonly string[])[]): Uint8Array {
  const bytes = encoder.encode(text);
  // Any character beyond ASCII takes two or more bytes in UTF-8, so equal sizes mean ASCII.
  if (bytes.length === text.length) return bytes;
  return encoder.encode(frame(parts, true));
}

/** `\r\n$<n>\r\n` for every n below 1,024, made once (most arguments are short). */
const HEADS = Array.from({ length: 1_024 }, (_, n) => `\r\n$${n}\r\n`);

export function frame(parts: readonly (readonly string[])[], utf8: boolean): string {
  let count = 0;
  for (const part of parts) count += part.length;
  let text = `*${count}`;
  for (const part of parts) {
    for (const arg of part) {
      const n = utf8 ? utf8Length(arg) : arg.length;
      text += n < 1_024 ? HEADS[n] : `\r\n$${n}\r\n`;
      text += arg;
    }
  }
  return text + "\r\n";
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Position of the CR of the next CRLF at or after `from`, or -1. */
function lineEnd(buffer: Uint8Array, from: number, end: number): number {
  const at = buffer.indexOf(CR, from);
  return at === -1 || at + 1 >= end ? -1 : at;
}

function integer(buffer: Uint8Array, from: number, to: number): number {
  let n = 0, sign = 1, i = from;
  if (buffer[i] === 45) {
    sign = -1;
    i++;
  }
  for (; i < to; i++) n = n * 10 + (buffer[i] - 48);
  return sign * n;
}

/**
 * Where the reply at `buffer[start]` ends (the index after it), or -1 when it is not all there
 * yet: lengths are read, nothing is decoded.
 */
export function replyEnd(buffer: Uint8Array, start: number, end: number): number {
  if (start >= end) return -1;
  const eol = lineEnd(buffer, start + 1, end);
  if (eol === -1 || eol >= end) return -1;
  const next = eol + 2;
  switch (buffer[start]) {
    case 36: { // $ bulk string
      const length = integer(buffer, start + 1, eol);
      if (length < 0) return next;
      return next + length + 2 > end ? -1 : next + length + 2;
    }
    case 42: { // * array
      let at = next;
      const count = integer(buffer, start + 1, eol);
      for (let i = 0; i < count && at !== -1; i++) at = replyEnd(buffer, at, end);
      return at;
    }
    default:
      return next;
  }
}

/** Decodes one reply from `buffer[start, end)`, or undefined when it is not all there yet. */
export function parse(
  buffer: Uint8Array,
  start: number,
  end: number,
): { value: Reply | ReplyError; next: number } | undefined {
  if (start >= end) return undefined;
  const eol = lineEnd(buffer, start + 1, end);
  if (eol === -1 || eol >= end) return undefined;
  const type = buffer[start];
  const next = eol + 2;
  switch (type) {
    case 43: // + simple string
      return { value: decoder.decode(buffer.subarray(start + 1, eol)), next };
    case 45: // - error
      return { value: new ReplyError(decoder.decode(buffer.subarray(start + 1, eol))), next };
    case 58: // : integer
      return { value: integer(buffer, start + 1, eol), next };
    case 36: { // $ bulk string
      const length = integer(buffer, start + 1, eol);
      if (length < 0) return { value: null, next };
      if (next + length + 2 > end) return undefined;
      return {
        value: decoder.decode(buffer.subarray(next, next + length)),
        next: next + length + 2,
      };
    }
    case 42: { // * array
      const count = integer(buffer, start + 1, eol);
      if (count < 0) return { value: null, next };
      const items: Reply[] = new Array(count);
      let at = next, error: ReplyError | undefined;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, at, end);
        if (!item) return undefined;
        if (item.value instanceof ReplyError) error ??= item.value;
        else items[i] = item.value;
        at = item.next;
      }
      return { value: error ?? items, next: at };
    }
    default:
      throw new Error(`unexpected reply type byte ${type} from Redis`);
  }
}
