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

/** Thrown when an object named in `sectionLimits` has more members than allowed. */
export class JsonLimitError extends Error {}

/**
 * The most members each named member of the root object may have. Checked while parsing, so that
 * a 4 MiB area of tens of thousands of tiny entries is refused at the first one too many, not
 * after building all of them.
 */
export type SectionLimits = Readonly<Record<string, number>>;

const MAX_DEPTH = 32;
/** A string's rest up to and including its closing quote, with no escape or control character. */
const PLAIN_STRING = /[^"\\\x00-\x1f]*"/y;
/** Sticky: matches at lastIndex only, without copying the rest of the text. */
const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses exactly one JSON value filling all of `text` (surrounding whitespace allowed). */
export function parseJson(bytes: Uint8Array, sectionLimits: SectionLimits = {}): JsonValue {
  return parse(bytes, sectionLimits).value;
}

/** Where a value lies in the decoded text: [start, end), in UTF-16 code units. */
export interface JsonSpan {
  start: number;
  end: number;
}

/**
 * parseJson, and where the value at `path` (member names from the root object down) lies in the
 * decoded text (null when there is none): so that one value can be replaced and every other
 * character stays as it was. The text re-encodes to the same bytes (it was valid UTF-8).
 */
export function parseJsonAt(bytes: Uint8Array, sectionLimits: SectionLimits, path: readonly string[]): { value: JsonValue; text: string; span: JsonSpan | null } {
  return parse(bytes, sectionLimits, path);
}

function parse(bytes: Uint8Array, sectionLimits: SectionLimits, path?: readonly string[]): { value: JsonValue; text: string; span: JsonSpan | null } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonSyntaxError('invalid UTF-8');
  }
  const p = new Parser(text, sectionLimits);
  p.ws();
  const value = p.value(0, undefined, path);
  p.ws();
  if (p.pos !== text.length) throw new JsonSyntaxError(`unexpected data at offset ${p.pos}`);
  return { value, text, span: p.span };
}

class Parser {
  pos = 0;
  /** Where the value at the path asked for lies (parseJsonAt). */
  span: JsonSpan | null = null;
  constructor(
    private readonly s: string,
    private readonly limits: SectionLimits,
  ) {}

  ws(): void {
    for (let c = this.s.charCodeAt(this.pos); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = this.s.charCodeAt(++this.pos));
  }

  fail(what: string): never {
    throw new JsonSyntaxError(`${what} at offset ${this.pos}`);
  }

  /**
   * `name`: the member name, for members of the root object. `path`: what is left of the path
   * whose value's span is wanted, while this value lies on it.
   */
  value(depth: number, name?: string, path?: readonly string[]): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.s[this.pos];
    if (c === '{') return this.object(depth, name, path);
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

  object(depth: number, name?: string, path?: readonly string[]): JsonValue {
    const v = new Map<string, JsonValue>();
    const maxMembers = (name !== undefined && Object.hasOwn(this.limits, name) && this.limits[name]) || Infinity;
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
      if (v.size >= maxMembers) throw new JsonLimitError(`${name}: more than the ${maxMembers} allowed`);
      this.ws();
      if (this.s[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      this.ws();
      const rest = path !== undefined && path[0] === key ? path.slice(1) : undefined;
      const start = this.pos;
      v.set(key, this.value(depth + 1, depth === 0 ? key : undefined, rest));
      if (rest?.length === 0) this.span = { start, end: this.pos };
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
    // Most strings have no escape: take them in one slice. A 4 MiB area of tiny entries must
    // parse in well under a second (LUKS2 counts are bounded only after parsing).
    PLAIN_STRING.lastIndex = this.pos;
    if (PLAIN_STRING.test(this.s)) {
      const start = this.pos;
      this.pos = PLAIN_STRING.lastIndex;
      return this.s.slice(start, this.pos - 1);
    }
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
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.s);
    if (!m || m[0].length >= 400) this.fail('bad number');
    this.pos += m[0].length;
    if (m[2] === undefined && m[3] === undefined) return { t: 'int', v: BigInt(m[0]) };
    return { t: 'double', v: Number(m[0]) };
  }
}
