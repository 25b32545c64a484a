"""CTAP2 canonical CBOR (CTAP 2.1 §8 "Message Encoding"): the subset CTAP uses — unsigned and negative
integers, byte and text strings, arrays, maps, true/false/null — encoded in the CTAP2 canonical form
(shortest lengths, map keys sorted by the bytes of their encoding, shorter first) and decoded with a
nesting bound. Test support for the software authenticator only."""

MAX_DEPTH = 8


class CborError(ValueError):
    pass


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for size, ai in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | ai]) + n.to_bytes(size, 'big')
    raise CborError('integer too large')


def encode(v) -> bytes:
    if v is False:
        return b'\xf4'
    if v is True:
        return b'\xf5'
    if v is None:
        return b'\xf6'
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, (bytes, bytearray)):
        return _head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode('utf-8')
        return _head(3, len(b)) + b
    if isinstance(v, (list, tuple)):
        return _head(4, len(v)) + b''.join(encode(x) for x in v)
    if isinstance(v, dict):
        items = sorted((encode(k), encode(x)) for k, x in v.items())
        items.sort(key=lambda kv: (len(kv[0]), kv[0]))
        return _head(5, len(items)) + b''.join(k + x for k, x in items)
    raise CborError(f'cannot encode {type(v).__name__}')


def decode(data: bytes):
    """The one CBOR item that makes up `data` (trailing bytes are an error)."""
    v, end = _item(data, 0, 0)
    if end != len(data):
        raise CborError('trailing bytes after the CBOR item')
    return v


def _item(d: bytes, i: int, depth: int):
    if depth > MAX_DEPTH:
        raise CborError('nested too deeply')
    if i >= len(d):
        raise CborError('truncated')
    major, ai = d[i] >> 5, d[i] & 31
    i += 1
    if ai < 24:
        n = ai
    elif ai <= 27:
        size = 1 << (ai - 24)
        if i + size > len(d):
            raise CborError('truncated')
        n = int.from_bytes(d[i:i + size], 'big')
        i += size
    else:
        raise CborError('indefinite lengths and reserved values are not CTAP2 canonical')
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        if i + n > len(d):
            raise CborError('truncated string')
        s = d[i:i + n]
        return (bytes(s) if major == 2 else s.decode('utf-8')), i + n
    if major == 4:
        out = []
        for _ in range(n):
            v, i = _item(d, i, depth + 1)
            out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _item(d, i, depth + 1)
            v, i = _item(d, i, depth + 1)
            if isinstance(k, (list, dict)) or k in out:
                raise CborError('bad or duplicate map key')
            out[k] = v
        return out, i
    if major == 7 and ai in (20, 21, 22):
        return {20: False, 21: True, 22: None}[ai], i
    raise CborError(f'unsupported CBOR major type {major}')
