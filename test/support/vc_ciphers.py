"""VeraCrypt's encryption algorithms in XTS for the independent reader (vc_reader.py), sharing no
code with vault: AES from the `cryptography` package (OpenSSL), Serpent, Twofish and Camellia from
libgcrypt's own XTS mode (loaded through ctypes), Kuznyechik from vc_kuznyechik.py (RFC 7801) with
the XTS arithmetic of IEEE 1619 written out below. Also PBKDF2 through libgcrypt for the PRFs
Python's hashlib lacks (Whirlpool, Streebog).

Cascades (VeraCrypt documentation, "Cascades of ciphers"): "AES-Twofish-Serpent" encrypts each
data unit with Serpent, then Twofish, then AES: the name lists the ciphers in reverse order of
encryption, and each cipher makes a full XTS pass with its own key pair. Key layout (VeraCrypt
src/Common/Crypto.c EAInit and EAInitMode): the primary keys of all ciphers first, 32 bytes each in
encryption order, then their secondary (tweak) keys in the same order.
"""
import ctypes

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# VeraCrypt 1.26's algorithms, by VeraCrypt's names (src/Common/Crypto.c EncryptionAlgorithms).
ALGORITHMS = [
    "AES", "Serpent", "Twofish", "Camellia", "Kuznyechik",
    "AES-Twofish", "AES-Twofish-Serpent", "Serpent-AES", "Serpent-Twofish-AES", "Twofish-Serpent",
    "Camellia-Kuznyechik", "Camellia-Serpent", "Kuznyechik-AES", "Kuznyechik-Serpent-Camellia", "Kuznyechik-Twofish",
]


def encryption_order(name):
    return [c.lower() for c in reversed(name.split("-"))]


# gcrypt.h (libgcrypt 1.10)
_GCRY_CIPHER = {"serpent": 306, "twofish": 10, "camellia": 312}  # SERPENT256, TWOFISH (256-bit), CAMELLIA256
_GCRY_MODE_XTS = 13
_GCRY_MD = {"whirlpool": 305, "streebog": 310}  # WHIRLPOOL, STRIBOG512
_GCRY_KDF_PBKDF2 = 34
_GCRYCTL_DISABLE_SECMEM = 37
_GCRYCTL_INITIALIZATION_FINISHED = 38

_gcry = None


def gcrypt():
    global _gcry
    if _gcry is None:
        lib = ctypes.CDLL("libgcrypt.so.20")
        lib.gcry_check_version.restype = ctypes.c_char_p
        lib.gcry_check_version.argtypes = [ctypes.c_char_p]
        if not lib.gcry_check_version(b"1.8.0"):
            raise RuntimeError("libgcrypt 1.8 or later is needed")
        lib.gcry_control(_GCRYCTL_DISABLE_SECMEM, 0)  # test keys: no locked pool, no warnings
        lib.gcry_control(_GCRYCTL_INITIALIZATION_FINISHED, 0)
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        lib.gcry_cipher_open.argtypes = [ctypes.POINTER(vp), ctypes.c_int, ctypes.c_int, ctypes.c_uint]
        lib.gcry_cipher_setkey.argtypes = [vp, ctypes.c_char_p, sz]
        lib.gcry_cipher_setiv.argtypes = [vp, ctypes.c_char_p, sz]
        lib.gcry_cipher_encrypt.argtypes = [vp, ctypes.c_void_p, sz, ctypes.c_void_p, sz]
        lib.gcry_cipher_decrypt.argtypes = [vp, ctypes.c_void_p, sz, ctypes.c_void_p, sz]
        lib.gcry_cipher_close.argtypes = [vp]
        lib.gcry_kdf_derive.argtypes = [ctypes.c_char_p, sz, ctypes.c_int, ctypes.c_int, ctypes.c_char_p, sz, ctypes.c_ulong, sz, ctypes.c_void_p]
        for f in ("gcry_cipher_open", "gcry_cipher_setkey", "gcry_cipher_setiv", "gcry_cipher_encrypt", "gcry_cipher_decrypt", "gcry_kdf_derive"):
            getattr(lib, f).restype = ctypes.c_uint
        _gcry = lib
    return _gcry


def _check(rc, what):
    if rc:
        raise RuntimeError(f"libgcrypt {what} failed: error {rc}")


def pbkdf2_gcrypt(prf, password, salt, iterations, length):
    out = ctypes.create_string_buffer(length)
    _check(gcrypt().gcry_kdf_derive(password, len(password), _GCRY_KDF_PBKDF2, _GCRY_MD[prf], salt, len(salt), iterations, length, out), "PBKDF2")
    return out.raw


def _xts_gcrypt(cipher, key, first_unit, unit, data, decrypt):
    lib = gcrypt()
    h = ctypes.c_void_p()
    _check(lib.gcry_cipher_open(ctypes.byref(h), _GCRY_CIPHER[cipher], _GCRY_MODE_XTS, 0), "open")
    try:
        _check(lib.gcry_cipher_setkey(h, key, len(key)), "setkey")
        buf = ctypes.create_string_buffer(bytes(data), len(data))
        op = lib.gcry_cipher_decrypt if decrypt else lib.gcry_cipher_encrypt
        for i in range(0, len(data), unit):
            # One call is one data unit: its tweak is set afresh for each.
            _check(lib.gcry_cipher_setiv(h, (first_unit + i // unit).to_bytes(16, "little"), 16), "setiv")
            _check(op(h, ctypes.byref(buf, i), unit, None, 0), "XTS")
        return buf.raw
    finally:
        lib.gcry_cipher_close(h)


def _xts_aes(key, first_unit, unit, data, decrypt):
    out = bytearray()
    for i in range(0, len(data), unit):
        c = Cipher(algorithms.AES(key), modes.XTS((first_unit + i // unit).to_bytes(16, "little")))
        op = c.decryptor() if decrypt else c.encryptor()
        out += op.update(data[i:i + unit]) + op.finalize()
    return bytes(out)


def _xts_python(block, key, first_unit, unit, data, decrypt):
    """IEEE 1619 XTS over whole 16-byte blocks (VeraCrypt's units are 448 or 512 bytes): T =
    E_K2(unit number, 16 bytes little-endian); block j is E_K1(P xor T) xor T; T is then
    multiplied by x in GF(2^128), T read as a little-endian number, modulo x^128 + x^7 + x^2 + x + 1."""
    k1, k2 = block(key[:32]), block(key[32:])
    op = k1.decrypt if decrypt else k1.encrypt
    out = bytearray()
    for i in range(0, len(data), unit):
        t = int.from_bytes(k2.encrypt((first_unit + i // unit).to_bytes(16, "little")), "little")
        for j in range(i, i + unit, 16):
            x = int.from_bytes(data[j:j + 16], "little") ^ t
            y = int.from_bytes(op(x.to_bytes(16, "little")), "little") ^ t
            out += y.to_bytes(16, "little")
            t <<= 1
            if t >> 128:
                t = (t & ((1 << 128) - 1)) ^ 0x87
    return bytes(out)


def xts(cipher, key, first_unit, unit, data, decrypt):
    """One cipher's XTS pass over whole data units of `unit` bytes; key = key 1 || key 2 (64 bytes)."""
    if cipher == "aes":
        return _xts_aes(key, first_unit, unit, data, decrypt)
    if cipher == "kuznyechik":
        from vc_kuznyechik import Kuznyechik
        return _xts_python(Kuznyechik, key, first_unit, unit, data, decrypt)
    return _xts_gcrypt(cipher, key, first_unit, unit, data, decrypt)


def chain_key_bytes(name):
    return 64 * len(name.split("-"))


def chain_xts(name, key, first_unit, unit, data, decrypt=True):
    """The algorithm `name` (VeraCrypt's) over data units; key laid out as VeraCrypt's (above)."""
    order = encryption_order(name)
    n = len(order)
    keys = [key[32 * i:32 * i + 32] + key[32 * (n + i):32 * (n + i) + 32] for i in range(n)]
    steps = list(zip(order, keys))
    for cipher, k in (reversed(steps) if decrypt else steps):
        data = xts(cipher, k, first_unit, unit, data, decrypt)
    return data
