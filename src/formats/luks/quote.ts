/**
 * Untrusted header strings in messages and `vault info` lines: one line, no terminal control
 * characters, bounded length. JSON.stringify quotes and escapes (a "\n" stays two characters).
 */
export function quote(s: string, max = 40): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** For display lines: control characters (C0, DEL, C1) become "?". */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
