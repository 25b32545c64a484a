#!/usr/bin/env python3
"""An independent VeraCrypt volume reader for vault's tests. It shares no code with vault.

It is written from VeraCrypt's published volume format
(https://veracrypt.io/en/VeraCrypt%20Volume%20Format%20Specification.html, and the
keyfile algorithm at https://veracrypt.io/en/Keyfiles.html), using only Python's hashlib
(PBKDF2-HMAC, from OpenSSL) and the `cryptography` package (AES-XTS and Argon2id, from OpenSSL).

Usage: vc_reader.py < jobs.json
Standard input is a JSON list of jobs (one process reads many volumes: Python starts slowly):
  {"file": F, "prf": "sha512"|"sha256"|"blake2s"|"ripemd160"|"argon2id", "password": P (text),
   "pim": N, "hidden": bool, "backup": bool, "keyfiles": [paths], "dump": OUT or null}
Prints a JSON list with one object per job: the decrypted header's fields and its checks, and
"ok" when the magic and both CRCs are right. "dump" writes the decrypted data area to OUT.
"""
import hashlib
import json
import struct
import sys
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Where the headers are in a file-hosted volume (spec: "Volume Format Specification").
HEADER_OFFSETS = {("normal", False): 0, ("hidden", False): 65536,
                  ("normal", True): -131072, ("hidden", True): -65536}
UNIT = 512  # XTS data unit


def iterations(prf, pim):
    """PBKDF2 iteration counts of a non-system volume (VeraCrypt documentation, "PIM")."""
    if pim:
        return 15000 + pim * 1000
    return 655331 if prf == "ripemd160" else 500000


def argon2_params(pim):
    """VeraCrypt 1.26.27+ Argon2id: memory grows with PIM up to 31, then passes (at 1 GiB)."""
    p = pim or 12
    if p <= 31:
        return (64 + (p - 1) * 32) * 1024, (p - 1) // 3 + 3
    return 1024 * 1024, p - 18


def header_key(prf, password, salt, pim):
    if prf == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        mem, passes = argon2_params(pim)
        return Argon2id(salt=salt, length=192, iterations=passes, lanes=1, memory_cost=mem).derive(password)
    return hashlib.pbkdf2_hmac(prf, password, salt, iterations(prf, pim), 64)


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


def xts(key, unit, data, decrypt=True):
    """AES-256-XTS over whole 512-byte data units starting at data unit number `unit`."""
    out = bytearray()
    for i in range(0, len(data), UNIT):
        tweak = (unit + i // UNIT).to_bytes(16, "little")
        c = Cipher(algorithms.AES(key), modes.XTS(tweak))
        op = c.decryptor() if decrypt else c.encryptor()
        out += op.update(data[i:i + UNIT]) + op.finalize()
    return bytes(out)


def read_header(path, prf, password, pim, kind, backup):
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        off = HEADER_OFFSETS[(kind, backup)]
        f.seek(off if off >= 0 else size + off)
        raw = f.read(512)
    salt = raw[:64]
    hk = header_key(prf, password, salt, pim)
    # The 448 encrypted bytes are one XTS data unit, number 0, keyed by the first 64 key bytes.
    c = Cipher(algorithms.AES(hk[:64]), modes.XTS(bytes(16))).decryptor()
    plain = salt + c.update(raw[64:]) + c.finalize()
    return plain, size


def fields(plain):
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
        "unusedKeyAreaZero": plain[320:512] == bytes(192),
    }


def read(job):
    keyfiles = [open(k, "rb").read() for k in job.get("keyfiles", [])]
    password = mix_keyfiles(job["password"].encode(), keyfiles)
    pim = job.get("pim", 0)
    kind = "hidden" if job.get("hidden") else "normal"
    plain, size = read_header(job["file"], job["prf"], password, pim, kind, bool(job.get("backup")))
    out = fields(plain)
    out["fileSize"] = size
    ok = out["magic"] == "VERA" and out["keyAreaCrcOk"] and out["headerCrcOk"]
    if ok and job.get("dump"):
        start, length = out["encryptedAreaStart"], out["volumeSize"]
        mk = plain[256:320]
        with open(job["file"], "rb") as f, open(job["dump"], "wb") as o:
            f.seek(start)
            done = 0
            while done < length:
                n = min(1 << 20, length - done)
                # Data unit numbers count 512-byte units from the start of the file.
                o.write(xts(mk, (start + done) // UNIT, f.read(n)))
                done += n
    out["ok"] = ok
    return out


if __name__ == "__main__":
    json.dump([read(j) for j in json.load(sys.stdin)], sys.stdout)
    sys.stdout.write("\n")
