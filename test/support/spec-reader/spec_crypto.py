"""Primitives of spec §4 and §8 through ctypes: libcrypto (AES-256-XTS, ChaCha20-Poly1305) and
libargon2 (Argon2id); HChaCha20 written out; HKDF from the standard library's HMAC."""
import ctypes
import hashlib
import hmac
import struct

from spec_failures import Failure

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
                raise Failure('header-tampered', 'OpenSSL refused the XTS key')

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
    """Known answers, so a broken binding fails loudly instead of as a 'wrong-passphrase'."""
    k = bytes(range(32))
    n = bytes.fromhex('000000090000004a0000000031415927')
    want = '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc'
    assert hchacha20(k, n).hex() == want, 'HChaCha20 known answer'
    mk = bytes(range(64))
    c = Xts(mk).encrypt(5, bytes(4096))
    assert c[:32].hex() == '41047df5c636cd4fcb4cae528f91daa1d6c25ebf4219446489e8fcd7c9271e97', 'spec §8 example'
    assert c[-32:].hex() == 'f650b784b850cc909ba93fc87ff815c8623f8bbc7821a63f9843285f9698ffdf', 'spec §8 example'
