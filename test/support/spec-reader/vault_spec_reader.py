#!/usr/bin/env python3
"""An independent reader of vault containers, written from spec/format.md alone (issue 20).

It validates the header copies (spec §6, §7), unlocks a keyslot (§3, §4, §14), verifies the header
MAC (§5) and writes the decrypted data area, the plaintext block device image (§8), to OUTPUT.
It never writes to the container. Primitives come from system libraries through ctypes: OpenSSL's
libcrypto (AES-256-XTS, ChaCha20-Poly1305) and libargon2 (Argon2id); SHA-256, HMAC and HKDF from
the standard library. HChaCha20 (the XChaCha20 subkey step) is written out here.

usage: vault_spec_reader.py CONTAINER OUTPUT [--keyfile F ...] [--slot N] [--raw-secret]
                            [--reencrypt-view]
The secret is read from standard input, all of it less exactly one trailing newline (§4.2), as
vault's --password-stdin. With --raw-secret, stdin holds the hex of a token slot's 32-byte secret
(§14: TPM2/FIDO2 secrets, which a reader gets from a device); it is tried as P on those tokens' slots.
A 64-character modhex input (spaces and '-' removed, any case) is a recovery key (§14.2).
With --reencrypt-view a container part-way through a re-encryption (§13) is read as it would be
after the run finished, computed in memory, nothing written; without it such a container is refused.

Exit codes: 0 success, and one per failure class (FAILURES below); the class and a message go to
stderr as one line `spec-reader: <class>: <message>`.
"""
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import stat
import struct
import sys

# ---------------------------------------------------------------------------------------------
# Failure classes

FAILURES = {
    'usage': 2,
    'wrong passphrase': 3,
    'io error': 7,
    'truncated': 10,
    'not a container': 11,
    'unsupported version': 12,
    'checksum mismatch': 13,
    'unsupported feature': 14,
    'invalid field': 15,
    'tampered': 16,
    'no active keyslot': 17,
    'refused secret': 18,
    'journal damaged': 19,
}
# When both copies are invalid, the class of the copy that got furthest through §7 is reported.
STEP_OF = {'truncated': 1, 'not a container': 2, 'unsupported version': 3, 'checksum mismatch': 4,
           'unsupported feature': 5, 'invalid field': 6}


class Failure(Exception):
    def __init__(self, cls, msg, step=None):
        super().__init__(msg)
        self.cls = cls
        self.step = step if step is not None else STEP_OF.get(cls, 7)


def warn(msg):
    sys.stderr.write(f'spec-reader: warning: {msg}\n')


# ---------------------------------------------------------------------------------------------
# Primitives through ctypes

_crypto = ctypes.CDLL('libcrypto.so.3')
_crypto.EVP_CIPHER_fetch.restype = ctypes.c_void_p
_crypto.EVP_CIPHER_fetch.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
_crypto.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
_crypto.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
_crypto.EVP_CipherInit_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_int]
_crypto.EVP_CipherUpdate.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                     ctypes.c_char_p, ctypes.c_int]
_crypto.EVP_CipherFinal_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
_crypto.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
EVP_CTRL_AEAD_SET_IVLEN = 0x9
EVP_CTRL_AEAD_SET_TAG = 0x11

_argon2 = ctypes.CDLL('libargon2.so.1')
_argon2.argon2_hash.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
_argon2.argon2_hash.restype = ctypes.c_int
ARGON2_ID = 2
ARGON2_VERSION_13 = 0x13


def _cipher(name):
    c = _crypto.EVP_CIPHER_fetch(None, name, None)
    if not c:
        raise RuntimeError(f'libcrypto has no {name.decode()}')
    return c


class Xts:
    """AES-256-XTS of whole data units (one sector each), key K1 || K2 (§8)."""

    def __init__(self, key):
        self.ctx = {}
        for enc in (0, 1):
            ctx = self.ctx[enc] = _crypto.EVP_CIPHER_CTX_new()
            if _crypto.EVP_CipherInit_ex(ctx, _cipher(b'AES-256-XTS'), None, key, bytes(16), enc) != 1:
                raise Failure('tampered', 'OpenSSL refused the XTS key')

    def _run(self, enc, sector_index, data):
        iv = sector_index.to_bytes(16, 'little')
        out = ctypes.create_string_buffer(len(data))
        n = ctypes.c_int(0)
        ctx = self.ctx[enc]
        ok = _crypto.EVP_CipherInit_ex(ctx, None, None, None, iv, enc) == 1
        ok = ok and _crypto.EVP_CipherUpdate(ctx, out, ctypes.byref(n), data, len(data)) == 1
        if not ok or n.value != len(data):
            raise RuntimeError('XTS failed')
        return out.raw

    def decrypt(self, sector_index, data):
        return self._run(0, sector_index, data)

    def encrypt(self, sector_index, data):
        return self._run(1, sector_index, data)

    def __del__(self):
        for ctx in self.ctx.values():
            _crypto.EVP_CIPHER_CTX_free(ctx)


def _rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def hchacha20(key, nonce16):
    """HChaCha20 of draft-irtf-cfrg-xchacha-03 §2.2."""
    s = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] + list(struct.unpack('<8I', key)) + list(
        struct.unpack('<4I', nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack('<8I', *(s[0:4] + s[12:16]))


def xchacha20poly1305_decrypt(key, nonce24, ciphertext_and_tag, aad):
    """Returns the plaintext, or None when the tag fails (§4.4)."""
    subkey = hchacha20(key, nonce24[:16])
    nonce12 = bytes(4) + nonce24[16:24]
    ct, tag = ciphertext_and_tag[:-16], ciphertext_and_tag[-16:]
    ctx = _crypto.EVP_CIPHER_CTX_new()
    try:
        n = ctypes.c_int(0)
        out = ctypes.create_string_buffer(len(ct) + 16)
        ok = _crypto.EVP_CipherInit_ex(ctx, _cipher(b'ChaCha20-Poly1305'), None, None, None, 0) == 1
        ok = ok and _crypto.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, None) == 1
        ok = ok and _crypto.EVP_CipherInit_ex(ctx, None, None, subkey, nonce12, 0) == 1
        ok = ok and _crypto.EVP_CipherUpdate(ctx, None, ctypes.byref(n), aad, len(aad)) == 1
        ok = ok and _crypto.EVP_CipherUpdate(ctx, out, ctypes.byref(n), ct, len(ct)) == 1
        if not ok:
            raise RuntimeError('ChaCha20-Poly1305 setup failed')
        tagbuf = ctypes.create_string_buffer(tag, 16)
        _crypto.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tagbuf)
        fin = ctypes.c_int(0)
        if _crypto.EVP_CipherFinal_ex(ctx, ctypes.byref(out, n.value), ctypes.byref(fin)) != 1:
            return None
        return out.raw[:len(ct)]
    finally:
        _crypto.EVP_CIPHER_CTX_free(ctx)


def argon2id(password, salt, m_kib, t, p):
    """§4.3: Argon2id v0x13, tag length 32, no secret, no associated data."""
    out = ctypes.create_string_buffer(32)
    rc = _argon2.argon2_hash(t, m_kib, p, password, len(password), salt, len(salt), out, 32, None, 0,
                             ARGON2_ID, ARGON2_VERSION_13)
    if rc != 0:
        raise RuntimeError(f'argon2_hash failed ({rc})')
    return out.raw


def hkdf_sha256(ikm, salt, info, length):
    """RFC 5869."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, t, i = b'', b'', 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def self_test():
    """Known answers, so a broken binding fails loudly instead of as a 'wrong passphrase'."""
    k = bytes(range(32))
    n = bytes.fromhex('000000090000004a0000000031415927')
    want = '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc'
    assert hchacha20(k, n).hex() == want, 'HChaCha20 known answer'
    mk = bytes(range(64))
    c = Xts(mk).encrypt(5, bytes(4096))
    assert c[:32].hex() == '41047df5c636cd4fcb4cae528f91daa1d6c25ebf4219446489e8fcd7c9271e97', 'spec §8 example'
    assert c[-32:].hex() == 'f650b784b850cc909ba93fc87ff815c8623f8bbc7821a63f9843285f9698ffdf', 'spec §8 example'


# ---------------------------------------------------------------------------------------------
# Header copies (§2, §3, §7, §13.2, §14.1)

HEADER = 4096
MIB = 1048576
SLOT_BASE, SLOT_SIZE, SLOTS = 128, 160, 8
RE_AREA = (1408, 2248)
TOKEN_AREA = (2248, 4032)
FLAG_REENCRYPT, FLAG_TOKENS = 1, 2
TOKEN_TYPES = {1: 'recovery', 2: 'tpm2', 3: 'fido2'}


class Copy:
    """One header copy that passed §7 steps 1–6."""

    def __init__(self, raw, where, offset):
        self.raw, self.where, self.offset = raw, where, offset
        (self.version, _hs, self.flags, self.sequence) = struct.unpack_from('<HHIQ', raw, 8)
        self.uuid = raw[24:40]
        (self.sector_size, _kc, self.data_offset, self.data_size) = struct.unpack_from('<IIQQ', raw, 72)
        self.slots = [raw[SLOT_BASE + SLOT_SIZE * i:SLOT_BASE + SLOT_SIZE * (i + 1)] for i in range(SLOTS)]
        self.tokens = {}
        self.new_sector_size = None

    def active(self):
        return [i for i, s in enumerate(self.slots) if s[0] == 1]

    def uuid_text(self):
        h = self.uuid.hex()
        return f'{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}'


def _zero(b):
    return b.count(0) == len(b)


def _invalid(where, msg):
    raise Failure('invalid field', f'{where} copy: {msg}')


def parse_copy(raw, where, offset, file_size):
    """§7 steps 1–6 for the copy read at `offset`; `where` is 'primary' or 'secondary'."""
    if len(raw) < HEADER:
        raise Failure('truncated', f'{where} copy: only {len(raw)} of 4096 bytes at offset {offset}')
    if raw[0:8] != b'VAULTVOL':
        raise Failure('not a container', f'{where} copy: no VAULTVOL magic at offset {offset}')
    version, header_size = struct.unpack_from('<HH', raw, 8)
    if version > 1:
        raise Failure('unsupported version', f'{where} copy: format version {version} (this reader knows 1)')
    if version == 0:
        _invalid(where, 'version 0')
    if header_size != HEADER:
        _invalid(where, f'header_size {header_size}, not 4096')
    if hashlib.sha256(raw[:4064]).digest() != raw[4064:4096]:
        raise Failure('checksum mismatch', f'{where} copy: SHA-256 checksum mismatch (damaged)')
    c = Copy(raw, where, offset)
    if c.flags & ~(FLAG_REENCRYPT | FLAG_TOKENS):
        raise Failure('unsupported feature', f'{where} copy: unknown flags 0x{c.flags:08x}')
    _check_structure(c, where, offset, file_size)
    return c


def _check_structure(c, where, offset, file_size):
    raw = c.raw
    if raw[40:72] != b'aes-256-xts' + bytes(21):
        _invalid(where, 'cipher is not aes-256-xts')
    if c.sector_size not in (512, 4096):
        _invalid(where, f'sector_size {c.sector_size}')
    if struct.unpack_from('<I', raw, 76)[0] != 8:
        _invalid(where, 'keyslot_count is not 8')
    if c.data_offset < MIB or c.data_offset % MIB:
        _invalid(where, f'data_offset {c.data_offset}')
    if c.data_size == 0 or c.data_size % c.sector_size:
        _invalid(where, f'data_size {c.data_size}')
    if c.data_offset + c.data_size + HEADER > 2 ** 53 - 1:
        _invalid(where, 'data_offset + data_size + 4096 exceeds 2^53 - 1')
    want_copy = 0 if where == 'primary' else 1
    if raw[96] != want_copy:
        _invalid(where, f'copy byte {raw[96]}, expected {want_copy}')
    if not _zero(raw[97:128]):
        _invalid(where, 'reserved bytes 97-127 not zero')
    if c.sequence < 1:
        _invalid(where, 'sequence 0')
    # Geometry against the place the copy was read from (see QUESTIONS.md, Q1/Q2).
    if where == 'secondary' and c.data_offset + c.data_size != offset:
        _invalid(where, f'describes a secondary copy at {c.data_offset + c.data_size}, read at {offset}')
    if c.data_offset + c.data_size + HEADER > file_size:
        raise Failure('truncated', f'{where} copy: the file ({file_size} bytes) is shorter than its geometry '
                                   f'({c.data_offset + c.data_size + HEADER} bytes)', step=6)
    for i, s in enumerate(c.slots):
        if s[0] not in (0, 1):
            _invalid(where, f'keyslot {i} state {s[0]}')
        if s[0] == 1:
            _check_slot(s, i, where)
    if c.flags & FLAG_REENCRYPT:
        _check_reencrypt_area(c, where)
    elif not _zero(raw[RE_AREA[0]:RE_AREA[1]]):
        _invalid(where, 'reserved bytes 1408-2247 not zero')
    if c.flags & FLAG_TOKENS:
        _check_tokens(c, where)
    elif not _zero(raw[TOKEN_AREA[0]:TOKEN_AREA[1]]):
        _invalid(where, 'reserved bytes 2248-4031 not zero')


def _check_slot(s, i, where):
    kdf = s[1]
    m, t, p = struct.unpack_from('<III', s, 4)
    if kdf != 1:
        _invalid(where, f'keyslot {i} kdf {kdf}')
    if not _zero(s[2:4]) or not _zero(s[152:160]):
        _invalid(where, f'keyslot {i} reserved bytes not zero')
    if not 1 <= p <= 16:
        _invalid(where, f'keyslot {i} parallelism {p}')
    if not (1024 <= m <= 4194304 and m >= 8 * p):
        _invalid(where, f'keyslot {i} memory {m} KiB')
    if not 1 <= t <= 64:
        _invalid(where, f'keyslot {i} iterations {t}')


def _check_reencrypt_area(c, where):
    raw = c.raw
    c.new_sector_size = struct.unpack_from('<I', raw, 1408)[0]
    if c.new_sector_size not in (512, 4096) or c.data_size % c.new_sector_size:
        _invalid(where, f'new_sector_size {c.new_sector_size}')
    if not _zero(raw[1412:1416]):
        _invalid(where, 'reserved bytes 1412-1415 not zero')
    if not c.active():
        _invalid(where, 'a flagged header without an active keyslot')
    for i in range(SLOTS):
        staged = raw[1416 + 104 * i:1416 + 104 * (i + 1)]
        if c.slots[i][0] == 0 and not _zero(staged):
            _invalid(where, f'staged wrap of empty slot {i} not zero')


def _check_tokens(c, where):
    area = c.raw[TOKEN_AREA[0]:TOKEN_AREA[1]]
    pos, tokens = 0, {}
    while pos < len(area):
        if area[pos] == 0:
            if not _zero(area[pos:]):
                _invalid(where, f'token area: bytes after the end of the list at {pos} not zero')
            break
        if pos + 4 > len(area):
            _invalid(where, 'token area: an entry header runs past the area')
        typ, slot, length = area[pos], area[pos + 1], struct.unpack_from('<H', area, pos + 2)[0]
        if typ not in TOKEN_TYPES:
            _invalid(where, f'token type {typ}')
        if slot > 7 or c.slots[slot][0] != 1:
            _invalid(where, f'token for slot {slot}, which is not an active keyslot')
        if slot in tokens:
            _invalid(where, f'two tokens for slot {slot}')
        if pos + 4 + length > len(area):
            _invalid(where, 'token area: an entry runs past the area')
        _check_payload(TOKEN_TYPES[typ], area[pos + 4:pos + 4 + length], where)
        tokens[slot] = TOKEN_TYPES[typ]
        pos += 4 + length
    if not tokens:
        _invalid(where, 'TOKENS is set but the token area holds no entry')
    c.tokens = tokens


def _check_payload(kind, pl, where):
    def bad(msg):
        _invalid(where, f'{kind} token: {msg}')

    if kind == 'recovery':
        if pl:
            bad('payload is not empty')
        return
    if kind == 'tpm2':
        if len(pl) < 41:
            bad('payload too short')
        bank, mask, flags = struct.unpack_from('<HIB', pl, 0)
        if bank != 0x000B or mask >> 24 or flags & ~1:
            bad('pcr_bank, pcr_mask or flags')
        pub_len = struct.unpack_from('<H', pl, 39)[0]
        if not 1 <= pub_len <= 1024 or len(pl) < 41 + pub_len + 2:
            bad('public_len')
        priv_len = struct.unpack_from('<H', pl, 41 + pub_len)[0]
        if not 1 <= priv_len <= 1024 or len(pl) != 43 + pub_len + priv_len:
            bad('private_len / payload length')
        return
    # fido2
    if len(pl) < 2 or pl[0] & ~7:
        bad('flags')
    rp_len = pl[1]
    if not 1 <= rp_len <= 64 or len(pl) < 2 + rp_len + 2:
        bad('rp_len')
    if not all(0x20 <= b <= 0x7e for b in pl[2:2 + rp_len]):
        bad('rp_id is not printable ASCII')
    cred_len = struct.unpack_from('<H', pl, 2 + rp_len)[0]
    if not 1 <= cred_len <= 1023 or len(pl) != 2 + rp_len + 2 + cred_len + 32:
        bad('cred_len / payload length')


def read_at(fd, offset, n):
    try:
        return os.pread(fd, n, offset)
    except OSError as e:
        raise Failure('io error', f'reading {n} bytes at {offset}: {e.strerror}')


def candidate_copies(fd, file_size):
    """§6 "Reading": the valid copies, newest first, and the failures of the invalid ones."""
    found, failures = [], []

    def take(where, offset):
        try:
            found.append(parse_copy(read_at(fd, offset, HEADER) if offset >= 0 else b'', where, offset, file_size))
        except Failure as f:
            failures.append(f)

    take('primary', 0)
    end = file_size - HEADER
    if end >= HEADER:  # a secondary copy cannot overlap the primary (QUESTIONS.md Q8)
        take('secondary', end)
    else:
        failures.append(Failure('truncated', f'file of {file_size} bytes has no room for a secondary copy'))
    prim = next((c for c in found if c.where == 'primary'), None)
    if prim and prim.data_offset + prim.data_size != end:
        take('secondary', prim.data_offset + prim.data_size)
    # Decreasing sequence, the primary first on a tie (sorted() is stable).
    return sorted(found, key=lambda c: -c.sequence), failures


# ---------------------------------------------------------------------------------------------
# Secrets and unlocking (§4, §14)

MODHEX = 'cbdefghijklnrtuv'


def recovery_key(pw):
    try:
        s = pw.decode('ascii').replace(' ', '').replace('-', '').lower()
    except UnicodeDecodeError:
        return None
    if len(s) != 64 or any(ch not in MODHEX for ch in s):
        return None
    return bytes(MODHEX.index(s[i]) << 4 | MODHEX.index(s[i + 1]) for i in range(0, 64, 2))


def kdf_input(pw, keyfiles):
    """§4.2."""
    if not keyfiles:
        if not pw:
            raise Failure('refused secret', 'an empty passphrase without keyfiles is refused')
        return pw
    hashes = []
    for f in keyfiles:
        try:
            with open(f, 'rb') as fh:
                data = fh.read(MIB + 1)
        except OSError as e:
            raise Failure('io error', f'keyfile {f}: {e.strerror}')
        if not 1 <= len(data) <= MIB:
            raise Failure('refused secret', f'keyfile {f} must be 1 to 1048576 bytes long')
        hashes.append(hashlib.sha256(data).digest())
    hashes.sort()
    return (b'vault-keyfiles-v1' + struct.pack('<I', len(pw)) + pw + struct.pack('<I', len(hashes)) +
            b''.join(hashes))


def slot_aad(c, i):
    return b'vault-keyslot-v1' + struct.pack('<H', c.version) + c.uuid + bytes([i]) + c.slots[i][0:48]


def kek_of(c, i, p, cache):
    s = c.slots[i]
    m, t, par = struct.unpack_from('<III', s, 4)
    key = (p, s[0:48])
    if key not in cache:
        cache[key] = argon2id(p, s[16:48], m, t, par)
    return cache[key]


def _slots_for(c, kind, only_slot):
    """Which active slots a secret of this kind is tried on (§14.2, §14.5)."""
    slots = [i for i in c.active() if only_slot is None or i == only_slot]
    if kind == 'recovery':
        return [i for i in slots if c.tokens.get(i) == 'recovery']
    if kind == 'passphrase':
        return [i for i in slots if c.tokens.get(i) not in ('tpm2', 'fido2')]
    return [i for i in slots if c.tokens.get(i) in ('tpm2', 'fido2')]  # a device's secret


def unlock_copy(c, secrets, only_slot, cache):
    """§4.4 then §7 step 7 on one copy: (slot, MK, KEK), or raises 'wrong passphrase' / 'tampered'.
    `secrets` are (kind, P) candidates made of one input (a recovery key is also a passphrase)."""
    for i in range(SLOTS):
        for kind, p in secrets:
            if i not in _slots_for(c, kind, only_slot):
                continue
            kek = kek_of(c, i, p, cache)
            s = c.slots[i]
            mk = xchacha20poly1305_decrypt(kek, s[48:72], s[72:152], slot_aad(c, i))
            if mk is None:
                continue
            if mk[:32] == mk[32:]:
                raise Failure('tampered', f'{c.where} copy: keyslot {i} holds a master key with equal halves')
            k_mac = hkdf_sha256(mk, c.uuid, b'vault-header-mac-v1', 32)
            if not hmac.compare_digest(hmac.new(k_mac, c.raw[:4032], hashlib.sha256).digest(), c.raw[4032:4064]):
                raise Failure('tampered', f'{c.where} copy: header MAC mismatch after keyslot {i} opened')
            return i, mk, kek
    raise Failure('wrong passphrase', 'no keyslot opened with this secret')


def unlock(copies, secrets, only_slot):
    """Tries the valid copies newest first (§6); see QUESTIONS.md Q3 for the fallback rule."""
    cache, failures = {}, []
    for c in copies:
        if not c.active():
            failures.append(Failure('no active keyslot', f'{c.where} copy has no active keyslot'))
            continue
        try:
            slot, mk, kek = unlock_copy(c, secrets, only_slot, cache)
        except Failure as f:
            failures.append(f)
            continue
        return c, slot, mk, kek, failures
    worst = max(failures, key=lambda f: ['no active keyslot', 'wrong passphrase', 'tampered'].index(f.cls))
    raise worst


# ---------------------------------------------------------------------------------------------
# Data area (§8) and re-encryption view (§13)

def decrypt_area(fd, out, c, mk):
    xts = Xts(mk)
    ss = c.sector_size
    sparse = stat.S_ISREG(os.fstat(out).st_mode)  # a regular file keeps holes; a device gets zeros
    chunk = max(ss, MIB)
    for base in range(0, c.data_size, chunk):
        buf = read_at(fd, c.data_offset + base, min(chunk, c.data_size - base))
        if len(buf) != min(chunk, c.data_size - base):
            raise Failure('truncated', f'data area ends early at data-area offset {base + len(buf)}')
        for o in range(0, len(buf), ss):
            sec = buf[o:o + ss]
            if _zero(sec):  # §8: a hole reads as zeros
                if not sparse:
                    os.pwrite(out, sec, base + o)
                continue
            os.pwrite(out, xts.decrypt((base + o) // ss, sec), base + o)
    if sparse:
        os.ftruncate(out, c.data_size)


JOURNAL = ((4096, 'A'), (526336, 'B'))
RECORD_BLOCK = 522240
UNIT = 4096


def _record(block, k_journal, data_size):
    if block[0:8] != b'VAULTRJ1':
        return None
    seq, seg_off, seg_len, units, unit_size = struct.unpack_from('<QQIII', block, 8)
    ok = (seq >= 1 and seg_off % 4096 == 0 and 1 <= seg_len <= 16 * MIB and seg_len % 512 == 0 and
          seg_off + seg_len <= data_size and units == -(-seg_len // UNIT) and unit_size == UNIT and
          _zero(block[36:64]))
    if not ok:
        return None
    end = 64 + 16 * units
    if not hmac.compare_digest(hmac.new(k_journal, block[:end], hashlib.sha256).digest(), block[end:end + 32]):
        return None
    hashes = [block[64 + 16 * j:80 + 16 * j] for j in range(units)]
    return seq, seg_off, seg_len, hashes


class Sectors:
    """Plaintext of data-area byte ranges under one key and sector size (§8, holes included)."""

    def __init__(self, fd, c, mk, sector_size):
        self.fd, self.c, self.xts, self.ss = fd, c, Xts(mk), sector_size

    def plain(self, stored, start):
        """Decrypts `stored`, the stored bytes at data-area offset `start` (whole sectors)."""
        out = bytearray()
        for o in range(0, len(stored), self.ss):
            sec = stored[o:o + self.ss]
            out += sec if _zero(sec) else self.xts.decrypt((start + o) // self.ss, sec)
        return bytes(out)

    def store(self, plain, start, stored_old, old_ss):
        """§13.4: re-encrypts `plain` (from `stored_old`, 4096-aligned at `start`); a new sector whose
        old sectors were all holes is stored as zeros again."""
        span = max(old_ss, self.ss)
        out = bytearray()
        for o in range(0, len(plain), self.ss):
            hole = _zero(stored_old[o // span * span:o // span * span + span])
            sec = plain[o:o + self.ss]
            out += bytes(len(sec)) if hole else self.xts.encrypt((start + o) // self.ss, sec)
        return bytes(out)


def reencrypt_view(fd, out, c, mk_old, kek, slot):
    """§13.5 read without writing: which bytes are new, which old, and the plaintext of both."""
    staged = c.raw[1416 + 104 * slot:1416 + 104 * (slot + 1)]
    mk_new = xchacha20poly1305_decrypt(kek, staged[0:24], staged[24:104], slot_aad(c, slot))
    if mk_new is None or mk_new[:32] == mk_new[32:] or mk_new == mk_old:
        raise Failure('tampered', f'keyslot {slot}: the staged wrap does not open to a usable new master key')
    k_journal = hkdf_sha256(mk_old + mk_new, c.uuid, b'vault-reencrypt-journal-v1', 32)
    blocks = [read_at(fd, off, RECORD_BLOCK) for off, _ in JOURNAL]
    records = [r for r in (_record(b, k_journal, c.data_size) for b in blocks) if r]
    old = Sectors(fd, c, mk_old, c.sector_size)
    new = Sectors(fd, c, mk_new, c.new_sector_size)
    if not records:
        if not any(_zero(b) for b in blocks):
            raise Failure('journal damaged', 'neither journal block holds a valid record and neither is zero')
        boundary, seg = 0, None
    else:
        seq, seg_off, seg_len, hashes = max(records)
        boundary, seg = seg_off + seg_len, (seg_off, seg_len, hashes)
    sparse = stat.S_ISREG(os.fstat(out).st_mode)
    # Granule: a multiple of both sector sizes, so each piece is whole sectors in either key.
    g = 4096
    for base in range(0, c.data_size, g):
        n = min(g, c.data_size - base)
        stored = read_at(fd, c.data_offset + base, n)
        if seg and seg[0] <= base < seg[0] + seg[1]:
            plain = _segment_unit(stored, base, seg, old, new)
        elif base < boundary:
            plain = new.plain(stored, base)
        else:
            plain = old.plain(stored, base)
        if not sparse or not _zero(plain):
            os.pwrite(out, plain, base)
    if sparse:
        os.ftruncate(out, c.data_size)
    return mk_new


def _segment_unit(stored, base, seg, old, new):
    want = seg[2][(base - seg[0]) // UNIT]
    if hashlib.sha256(stored).digest()[:16] == want:
        return new.plain(stored, base)
    plain = old.plain(stored, base)
    if hashlib.sha256(new.store(plain, base, stored, old.ss)).digest()[:16] == want:
        return plain
    raise Failure('journal damaged', f'unit at data-area offset {base} is neither old nor new')


# ---------------------------------------------------------------------------------------------
# Command line

def parse_args(argv):
    opts = {'keyfiles': [], 'slot': None, 'raw': False, 'view': False, 'pos': []}
    it = iter(argv)
    for a in it:
        if a == '--keyfile':
            opts['keyfiles'].append(next(it, None) or _usage('--keyfile needs a file'))
        elif a == '--slot':
            v = next(it, '')
            if not v.isdigit() or int(v) > 7:
                _usage('--slot needs 0-7')
            opts['slot'] = int(v)
        elif a == '--raw-secret':
            opts['raw'] = True
        elif a == '--reencrypt-view':
            opts['view'] = True
        elif a.startswith('-'):
            _usage(f'unknown option {a}')
        else:
            opts['pos'].append(a)
    if len(opts['pos']) != 2:
        _usage('expected CONTAINER OUTPUT')
    return opts


def _usage(msg):
    raise Failure('usage', f'{msg}\n{__doc__.split("usage: ")[1].split(chr(10) + chr(10))[0]}')


def read_secret(opts):
    data = sys.stdin.buffer.read()
    pw = data[:-1] if data.endswith(b'\n') else data
    if opts['raw']:
        try:
            p = bytes.fromhex(pw.decode('ascii').strip())
        except ValueError:
            raise Failure('usage', '--raw-secret expects hex on stdin')
        if len(p) != 32:
            raise Failure('usage', '--raw-secret expects 32 bytes')
        return [('raw', p)]
    # §14.2: recovery-key-shaped input goes, decoded, to the recovery slots; as typed it is still a
    # passphrase for the other slots (what vault does; QUESTIONS.md Q14).
    rk = None if opts['keyfiles'] else recovery_key(pw)
    return ([('recovery', rk)] if rk is not None else []) + [('passphrase', kdf_input(pw, opts['keyfiles']))]


def main(argv):
    opts = parse_args(argv)
    self_test()
    container, output = opts['pos']
    try:
        fd = os.open(container, os.O_RDONLY)
    except OSError as e:
        raise Failure('io error', f'{container}: {e.strerror}')
    size = os.lseek(fd, 0, os.SEEK_END)
    copies, failures = candidate_copies(fd, size)
    if not copies:
        raise max(failures, key=lambda f: f.step)
    for f in failures:
        warn(f'invalid header copy: {f.cls}: {f}')
    if copies[0].flags & FLAG_REENCRYPT and not opts['view']:
        raise Failure('unsupported feature', 'a re-encryption is under way (REENCRYPT flag); finish it with '
                                             'vault reencrypt --resume, or read it with --reencrypt-view')
    if not any(c.active() for c in copies):  # §3: reported as such, before any secret is read
        raise Failure('no active keyslot', 'no valid header copy has an active keyslot; it can never be unlocked')
    secrets = read_secret(opts)
    c, slot, mk, kek, unlock_failures = unlock(copies, secrets, opts["slot"])
    for f in unlock_failures:
        warn(f'header copy not used: {f.cls}: {f}')
    if c is not copies[0]:
        warn(f'unlocked the {c.where} copy, which is not the newest valid copy')
    try:
        out = os.open(output, os.O_WRONLY | os.O_CREAT | (0 if output.startswith('/dev/') else os.O_TRUNC), 0o600)
    except OSError as e:
        raise Failure('io error', f'{output}: {e.strerror}')
    try:
        if c.flags & FLAG_REENCRYPT:
            reencrypt_view(fd, out, c, mk, kek, slot)
        else:
            decrypt_area(fd, out, c, mk)
        os.fsync(out)
    finally:
        os.close(out)
    sys.stderr.write(f'spec-reader: uuid {c.uuid_text()}, {c.where} copy (sequence {c.sequence}), keyslot {slot}, '
                     f'{c.data_size} bytes\n')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except Failure as f:
        sys.stderr.write(f'spec-reader: {f.cls}: {f}\n')
        sys.exit(FAILURES[f.cls])
