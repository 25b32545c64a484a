#!/usr/bin/env python3
"""An independent VeraCrypt volume reader for vault's tests. It shares no code with vault.

It is written from VeraCrypt's published volume format
(https://veracrypt.io/en/VeraCrypt%20Volume%20Format%20Specification.html, the keyfile algorithm at
https://veracrypt.io/en/Keyfiles.html, and the cascades at .../Cascades.html), using Python's
hashlib (PBKDF2-HMAC, from OpenSSL), the `cryptography` package (AES-XTS and Argon2id, from
OpenSSL), libgcrypt through ctypes (Serpent, Twofish and Camellia in XTS; PBKDF2 with Whirlpool
and Streebog) and a Kuznyechik written from RFC 7801 (vc_ciphers.py, vc_kuznyechik.py).

Usage: vc_reader.py < jobs.json        (vc_reader.py --self-test: the Kuznyechik and XTS checks)
Standard input is a JSON list of jobs (one process reads many volumes: Python starts slowly):
  {"file": F, "prf": "sha512"|"sha256"|"blake2s"|"whirlpool"|"streebog"|"ripemd160"|"argon2id",
   "password": P (text), "pim": N, "hidden": bool, "backup": bool, "keyfiles": [paths],
   "truecrypt": bool (TrueCrypt 7: magic TRUE, its counts), "cipher": a VeraCrypt name to try
   alone (else every algorithm, AES first), "showKey": bool (print the master key in hex),
   "dump": OUT or null, "dumpFrom": byte offset in the data area, "dumpLength": bytes}
Prints a JSON list with one object per job: the decrypted header's fields and its checks, "cipher"
(the algorithm under which the magic and both CRCs came out right, VeraCrypt's name) and "ok".
"dump" writes the decrypted data area (or the part dumpFrom, dumpLength names) to OUT.
Jobs run in as many processes as there are cores (hashlib's PBKDF2 holds the GIL).
"""
import hashlib
import json
import os
import struct
import sys
import zlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from vc_ciphers import ALGORITHMS, chain_key_bytes, chain_xts, pbkdf2_gcrypt

# Where the headers are in a file-hosted volume (spec: "Volume Format Specification").
HEADER_OFFSETS = {("normal", False): 0, ("hidden", False): 65536,
                  ("normal", True): -131072, ("hidden", True): -65536}
UNIT = 512  # XTS data unit
FULL_KEY = 192  # header key bytes of a three-cipher cascade: VeraCrypt derives this many


def iterations(prf, pim, truecrypt):
    """PBKDF2 iteration counts of a non-system volume (VeraCrypt documentation, "PIM")."""
    if truecrypt:
        return 2000 if prf == "ripemd160" else 1000
    if pim:
        return 15000 + pim * 1000
    return 655331 if prf == "ripemd160" else 500000


def argon2_params(pim):
    """VeraCrypt 1.26.27+ Argon2id: memory grows with PIM up to 31, then passes (at 1 GiB)."""
    p = pim or 12
    if p <= 31:
        return (64 + (p - 1) * 32) * 1024, (p - 1) // 3 + 3
    return 1024 * 1024, p - 18


def header_key(prf, password, salt, pim, truecrypt, length):
    if prf == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        mem, passes = argon2_params(pim)
        # Argon2's output depends on its length: always VeraCrypt's 192 bytes.
        return Argon2id(salt=salt, length=FULL_KEY, iterations=passes, lanes=1, memory_cost=mem).derive(password)
    n = iterations(prf, pim, truecrypt)
    if prf in ("whirlpool", "streebog"):
        return pbkdf2_gcrypt(prf, password, salt, n, length)
    return hashlib.pbkdf2_hmac(prf, password, salt, n, length)


def mix_keyfiles(password, keyfiles):
    """The keyfile pool: 64 bytes (128 for passwords over 64 bytes), CRC-32 bytes added mod 256."""
    if not keyfiles:
        return password
    size = 64 if len(password) <= 64 else 128
    pool = [0] * size
    for data in keyfiles:
        crc = 0xFFFFFFFF
        pos = 0
        for b in data[:1024 * 1024]:
            # One step of the reflected CRC-32 register, without the final inversion.
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
            for shift in (24, 16, 8, 0):
                pool[pos] = (pool[pos] + (crc >> shift)) & 0xFF
                pos = (pos + 1) % size
    for i, b in enumerate(password):
        pool[i] = (pool[i] + b) & 0xFF
    return bytes(pool)


def checks_pass(plain, magic):
    be = lambda off: struct.unpack_from(">I", plain, off)[0]
    return plain[64:68] == magic and be(72) == zlib.crc32(plain[256:512]) and be(252) == zlib.crc32(plain[64:252])


def open_header(raw, job, password):
    """(plain, algorithm) for the first algorithm under which the header checks, or (last try, None).
    The 448 encrypted bytes are one XTS data unit, number 0. Single ciphers take the first 64 key
    bytes; cascades more, so PBKDF2 is run again for 192 bytes only when no single cipher fits."""
    salt = raw[:64]
    names = [job["cipher"]] if job.get("cipher") else ALGORITHMS
    magic = b"TRUE" if job.get("truecrypt") else b"VERA"
    args = (job["prf"], password, salt, job.get("pim", 0), bool(job.get("truecrypt")))
    key = b""
    plain = None
    for name in sorted(names, key=chain_key_bytes):
        if len(key) < chain_key_bytes(name):
            key = header_key(*args, FULL_KEY if chain_key_bytes(name) > 64 else 64)
        plain = salt + chain_xts(name, key, 0, 448, raw[64:])
        if checks_pass(plain, magic):
            return plain, name
    return plain, None


def fields(plain, n_ciphers):
    be = lambda fmt, off: struct.unpack_from(">" + fmt, plain, off)[0]
    return {
        "magic": plain[64:68].decode("latin1"),
        "version": be("H", 68),
        "requiredProgramVersion": be("H", 70),
        "keyAreaCrcOk": be("I", 72) == zlib.crc32(plain[256:512]),
        "headerCrcOk": be("I", 252) == zlib.crc32(plain[64:252]),
        "reservedTimesZero": plain[76:92] == bytes(16),
        "hiddenVolumeSize": be("Q", 92),
        "volumeSize": be("Q", 100),
        "encryptedAreaStart": be("Q", 108),
        "encryptedAreaSize": be("Q", 116),
        "flags": be("I", 124),
        "sectorSize": be("I", 128),
        "reservedZero": plain[132:252] == bytes(120),
        "unusedKeyAreaZero": plain[256 + 64 * n_ciphers:512] == bytes(256 - 64 * n_ciphers),
    }


def read(job):
    keyfiles = [open(k, "rb").read() for k in job.get("keyfiles", [])]
    password = mix_keyfiles(job["password"].encode(), keyfiles)
    kind = "hidden" if job.get("hidden") else "normal"
    with open(job["file"], "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        off = HEADER_OFFSETS[(kind, bool(job.get("backup")))]
        f.seek(off if off >= 0 else size + off)
        raw = f.read(512)
    plain, algorithm = open_header(raw, job, password)
    n = len(algorithm.split("-")) if algorithm else 1
    out = fields(plain, n)
    out["fileSize"] = size
    out["cipher"] = algorithm
    out["ok"] = algorithm is not None
    if algorithm and job.get("showKey"):
        out["masterKey"] = plain[256:256 + 64 * n].hex()
    if algorithm and job.get("dump"):
        mk = plain[256:256 + 64 * n]
        start = out["encryptedAreaStart"] + job.get("dumpFrom", 0)
        length = job.get("dumpLength", out["volumeSize"] - job.get("dumpFrom", 0))
        if start % UNIT or length % UNIT:
            raise ValueError("dumpFrom and dumpLength must be whole 512-byte data units")
        with open(job["file"], "rb") as f, open(job["dump"], "wb") as o:
            f.seek(start)
            done = 0
            while done < length:
                k = min(1 << 20, length - done)
                # Data unit numbers count 512-byte units from the start of the file.
                o.write(chain_xts(algorithm, mk, (start + done) // UNIT, UNIT, f.read(k)))
                done += k
    return out


def self_test():
    """Kuznyechik against RFC 7801, and the XTS written out here against OpenSSL's AES-XTS."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    import vc_ciphers
    import vc_kuznyechik

    class AesBlock:
        def __init__(self, key):
            self.c = Cipher(algorithms.AES(key), modes.ECB())

        def encrypt(self, b):
            return self.c.encryptor().update(b)

        def decrypt(self, b):
            return self.c.decryptor().update(b)

    failed = ["kuznyechik " + f for f in vc_kuznyechik.self_test()]
    key, data = os.urandom(64), os.urandom(3 * UNIT)
    mine = vc_ciphers._xts_python(AesBlock, key, 1 << 40, UNIT, data, False)
    if mine != vc_ciphers.xts("aes", key, 1 << 40, UNIT, data, False):
        failed.append("XTS arithmetic (against OpenSSL AES-XTS)")
    if vc_ciphers._xts_python(AesBlock, key, 1 << 40, UNIT, mine, True) != data:
        failed.append("XTS decryption")
    return {"ok": not failed, "failed": failed}


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        json.dump(self_test(), sys.stdout)
    else:
        jobs = json.load(sys.stdin)
        if len(jobs) < 2:
            json.dump([read(j) for j in jobs], sys.stdout)
        else:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1), mp_context=ctx) as pool:
                json.dump(list(pool.map(read, jobs)), sys.stdout)
    sys.stdout.write("\n")
