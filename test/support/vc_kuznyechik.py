"""Kuznyechik (GOST R 34.12-2015), written from RFC 7801 for the independent VeraCrypt reader
(vc_reader.py). It shares no code with vault (whose own is native/kuznyechik.c).

RFC 7801 writes a 128-bit block as a15 || ... || a0, a15 printed first. Here a block is the 16
bytes in that printed order, held as a big-endian integer: a15 is the top byte. VeraCrypt passes
its buffers to the cipher in this order (the real Kuznyechik volumes decrypt so).

  S      bytewise substitution by pi (section 4.1.1)
  R(a)   = l(a15, ..., a0) || a15 || ... || a1, with l the linear form of section 4.1.2 over
           GF(2^8) modulo p(x) = x^8 + x^7 + x^6 + x + 1; L = R^16
  keys   K1 || K2 = the 256-bit key; C_i = L(Vec128(i)); four times eight Feistel rounds
           (K_{2i+1}, K_{2i+2}) = F[C_{8i}] ... F[C_{8i-7}](K_{2i-1}, K_{2i}),
           F[C](a1, a0) = (L(S(a1 xor C)) xor a0, a1)  (section 4.3)
  E      = X[K10] L S X[K9] ... L S X[K1]; D = X[K1] S^-1 L^-1 X[K2] ... S^-1 L^-1 X[K10]

L is linear over GF(2), so L of a block is the XOR of L of each of its bytes in place: the tables
below hold those (and the same for L^-1), built from l's definition when this module loads.
"""

PI = bytes.fromhex(
    "fceedd11cf6e3116fbc4fada23c5044de977f0db932e99ba1736f1bb14cd5fc1"
    "f918655ae25cef21811c3c428b018e4f058402aee36a8fa0060bed987fd4d31f"
    "eb342c51eac848abf22a68a2fd3aceccb5700e56080c7612bf7213479cb75d87"
    "15a19629107b9ac7f391786f9d9eb2b13275193dff358a7e6d54c680c3bd0d57"
    "dff524a93ea843c9d779d6f67c22b903e00fecde7a94b0bcdce828504e330a4a"
    "a79760731e0062441ab83882649f2641ad454692275e552f8ca3a57d69d5953b"
    "0758b34086ac1df730376be488d9e789e11b83494c3ff8fe8d53aa90cad88561"
    "207167a42d2b095bcb9b25d0bee56c5259a674d2e6f4b4c0d166afc2394b63b6"
)
PI_INV = bytes(PI.index(i) for i in range(256))
# The coefficients of l for a15, a14, ..., a0 (section 4.1.2).
L_COEF = (148, 32, 133, 16, 194, 192, 1, 251, 1, 192, 194, 16, 133, 32, 148, 1)


def gf_mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x1C3
        b >>= 1
    return r


_MUL = {c: [gf_mul(c, x) for x in range(256)] for c in set(L_COEF)}


def _ell(v):
    r = 0
    for c, x in zip(L_COEF, v):
        r ^= _MUL[c][x]
    return r


def R(v):
    """v: the 16 bytes a15..a0 as a list."""
    return [_ell(v)] + v[:15]


def R_inv(v):
    return v[1:] + [_ell(v[1:] + v[:1])]


def _repeat16(f, x):
    v = list(x.to_bytes(16, "big"))
    for _ in range(16):
        v = f(v)
    return int.from_bytes(bytes(v), "big")


def L(x):
    return _repeat16(R, x)


def L_inv(x):
    return _repeat16(R_inv, x)


def _byte_tables(f):
    """T[i][b] = f(the block with byte b at position i, zeros elsewhere), from f of each bit."""
    tables = []
    for i in range(16):
        bits = [f(1 << (8 * (15 - i) + j)) for j in range(8)]
        row = []
        for b in range(256):
            y = 0
            for j in range(8):
                if b >> j & 1:
                    y ^= bits[j]
            row.append(y)
        tables.append(row)
    return tables


_LT = _byte_tables(L)
_LS = [[_LT[i][PI[b]] for b in range(256)] for i in range(16)]  # L(S(.)) of one byte
_LINV = _byte_tables(L_inv)


def _apply(tables, x):
    y = 0
    for i in range(16):
        y ^= tables[i][(x >> (120 - 8 * i)) & 0xFF]
    return y


def S(x):
    return int.from_bytes(x.to_bytes(16, "big").translate(PI), "big")


class Kuznyechik:
    def __init__(self, key):
        if len(key) != 32:
            raise ValueError("a Kuznyechik key is 32 bytes")
        a1, a0 = int.from_bytes(key[:16], "big"), int.from_bytes(key[16:], "big")
        self.rk = [a1, a0]
        consts = [L(i) for i in range(1, 33)]
        for i in range(4):
            for j in range(8):
                a1, a0 = _apply(_LS, a1 ^ consts[8 * i + j]) ^ a0, a1
            self.rk += [a1, a0]

    def encrypt(self, block):
        x = int.from_bytes(block, "big")
        for k in self.rk[:9]:
            x = _apply(_LS, x ^ k)
        return (x ^ self.rk[9]).to_bytes(16, "big")

    def decrypt(self, block):
        x = int.from_bytes(block, "big") ^ self.rk[9]
        for k in reversed(self.rk[:9]):
            y = _apply(_LINV, x).to_bytes(16, "big").translate(PI_INV)
            x = int.from_bytes(y, "big") ^ k
        return x.to_bytes(16, "big")


def self_test():
    """RFC 7801 section 5 (the examples of GOST R 34.12-2015 Appendix A.1). Returns what failed."""
    h = lambda s: int(s, 16)
    failed = []
    checks = [
        ("S", S(h("ffeeddccbbaa99881122334455667700")), h("b66cd8887d38e8d77765aeea0c9a7efc")),
        ("R", int.from_bytes(bytes(R(list(bytes.fromhex("00000000000000000000000000000100")))), "big"), h("94000000000000000000000000000001")),
        ("L", L(h("64a59400000000000000000000000000")), h("d456584dd0e3e84cc3166e4b7fa2890d")),
    ]
    for name, got, want in checks:
        if got != want:
            failed.append(name)
    if sorted(PI) != list(range(256)):
        failed.append("pi is not a permutation")
    k = Kuznyechik(bytes.fromhex("8899aabbccddeeff0011223344556677fedcba98765432100123456789abcdef"))
    if k.rk[9] != h("72e9dd7416bcf45b755dbaa88e4a4043"):
        failed.append("key schedule K10")
    pt, ct = bytes.fromhex("1122334455667700ffeeddccbbaa9988"), bytes.fromhex("7f679d90bebc24305a468d42b9d4edcd")
    if k.encrypt(pt) != ct:
        failed.append("encrypt")
    if k.decrypt(ct) != pt:
        failed.append("decrypt")
    return failed
