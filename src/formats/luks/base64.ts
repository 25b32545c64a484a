/** Strict base64 (RFC 4648 §4, padded), as LUKS2 JSON stores salts and digests. Buffer.from() alone accepts junk. */
export function decodeBase64(s: string): Buffer | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  return Buffer.from(s, 'base64');
}
