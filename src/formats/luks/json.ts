/**
 * A strict JSON reader for LUKS2 metadata: untrusted bytes in, typed values out.
 *
 * Why not JSON.parse: cryptsetup's validation (json-c) tells integers from doubles ("key_size": 64
 * is valid, 64.0 is not), and JSON.parse loses that along with integers above 2^53. Here integers
 * stay exact (bigint), duplicate keys and nesting deeper than json-c's default limit (32) are
 * refused, and invalid UTF-8 is an error instead of a replacement character.
 */

import { quote } from './quote.js';

export type JsonValue =
  | { t: 'object'; v: Map<string, JsonValue> }
  | { t: 'array'; v: JsonValue[] }
  | { t: 'string'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'double'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

export type JsonType = JsonValue['t'];

/** Thrown for malformed text; the caller turns it into a VaultError naming the header copy. */
export class JsonSyntaxError extends Error {}

const MAX_DEPTH = 32;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses exactly one JSON value filling all of `text` (surrounding whitespace allowed). */
export function parseJson(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonSyntaxError('invalid UTF-8');
  }
  const p = new Parser(text);
  p.ws();
  const value = p.value(0);
  p.ws();
  if (p.pos !== text.length) throw new JsonSyntaxError(`unexpected data at offset ${p.pos}`);
  return value;
}

class Parser {
  pos = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    while (this.pos < this.s.length && ' \t\n\r'.includes(this.s[this.pos]!)) this.pos++;
  }

  fail(what: string): never {
    throw new JsonSyntaxError(`${what} at offset ${this.pos}`);
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.s[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return { t: 'string', v: this.string() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', { t: 'bool', v: true }], ['false', { t: 'bool', v: false }], ['null', { t: 'null' }]] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail('unexpected character');
  }

  object(depth: number): JsonValue {
    const v = new Map<string, JsonValue>();
    this.pos++; // {
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return { t: 'object', v };
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail('expected a member name');
      const key = this.string();
      if (v.has(key)) this.fail(`duplicate member ${quote(key)}`);
      this.ws();
      if (this.s[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      this.ws();
      v.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos++];
      if (c === '}') return { t: 'object', v };
      if (c !== ',') this.fail('expected "," or "}"');
    }
  }

  array(depth: number): JsonValue {
    const v: JsonValue[] = [];
    this.pos++; // [
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return { t: 'array', v };
    }
    for (;;) {
      this.ws();
      v.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos++];
      if (c === ']') return { t: 'array', v };
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }

  string(): string {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const c = this.s[this.pos++];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') return out;
      if (c < ' ') this.fail('control character in string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.pos++];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === 'u') {
        const hex = this.s.slice(this.pos, this.pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 4;
      } else this.fail('bad escape');
    }
  }

  number(): JsonValue {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.s.slice(this.pos, this.pos + 400));
    if (!m || m[0].length === 400) this.fail('bad number');
    this.pos += m[0].length;
    if (m[2] === undefined && m[3] === undefined) return { t: 'int', v: BigInt(m[0]) };
    return { t: 'double', v: Number(m[0]) };
  }
}
