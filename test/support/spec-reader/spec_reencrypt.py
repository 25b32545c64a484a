"""Reading a container part-way through a re-encryption (spec §13.3-§13.5) without writing."""
import hashlib
import hmac
import os
import stat
import struct

from spec_crypto import Xts, hkdf_sha256, xchacha20poly1305_decrypt
from spec_failures import Failure
from spec_header import MIB, read_at, zero
from spec_unlock import slot_aad

JOURNAL = ((4096, 'A'), (526336, 'B'))
RECORD_BLOCK = 522240
UNIT = 4096


def _record(block, k_journal, data_size):
    if block[0:8] != b'VAULTRJ1':
        return None
    seq, seg_off, seg_len, units, unit_size = struct.unpack_from('<QQIII', block, 8)
    ok = (seq >= 1 and seg_off % 4096 == 0 and 1 <= seg_len <= 16 * MIB and seg_len % 512 == 0 and
          seg_off + seg_len <= data_size and units == -(-seg_len // UNIT) and unit_size == UNIT and
          zero(block[36:64]))
    if not ok:
        return None
    end = 64 + 16 * units
    if not hmac.compare_digest(hmac.new(k_journal, block[:end], hashlib.sha256).digest(), block[end:end + 32]):
        return None
    hashes = [block[64 + 16 * j:80 + 16 * j] for j in range(units)]
    return seq, seg_off, seg_len, hashes


class Sectors:
    """Plaintext of data-area byte ranges under one key and sector size (§8, holes included)."""

    def __init__(self, mk, sector_size):
        self.xts, self.ss = Xts(mk), sector_size

    def plain(self, stored, start):
        """Decrypts `stored`, the stored bytes at data-area offset `start` (whole sectors)."""
        out = bytearray()
        for o in range(0, len(stored), self.ss):
            sec = stored[o:o + self.ss]
            out += sec if zero(sec) else self.xts.decrypt((start + o) // self.ss, sec)
        return bytes(out)

    def store(self, plain, start, stored_old, old_ss):
        """§13.4: re-encrypts `plain` (from `stored_old`, 4096-aligned at `start`); a new sector whose
        old sectors were all holes is stored as zeros again."""
        span = max(old_ss, self.ss)
        out = bytearray()
        for o in range(0, len(plain), self.ss):
            hole = zero(stored_old[o // span * span:o // span * span + span])
            sec = plain[o:o + self.ss]
            out += bytes(len(sec)) if hole else self.xts.encrypt((start + o) // self.ss, sec)
        return bytes(out)


def reencrypt_view(fd, out, c, mk_old, kek, slot):
    """§13.5 read without writing: which bytes are new, which old, and the plaintext of both."""
    staged = c.raw[1416 + 104 * slot:1416 + 104 * (slot + 1)]
    mk_new = xchacha20poly1305_decrypt(kek, staged[0:24], staged[24:104], slot_aad(c, slot))
    if mk_new is None or mk_new[:32] == mk_new[32:] or mk_new == mk_old:
        raise Failure('header-tampered', f'keyslot {slot}: the staged wrap does not open to a usable new master key')
    k_journal = hkdf_sha256(mk_old + mk_new, c.uuid, b'vault-reencrypt-journal-v1', 32)
    blocks = [read_at(fd, off, RECORD_BLOCK) for off, _ in JOURNAL]
    records = [r for r in (_record(b, k_journal, c.data_size) for b in blocks) if r]
    old = Sectors(mk_old, c.sector_size)
    new = Sectors(mk_new, c.new_sector_size)
    if not records:
        if not any(zero(b) for b in blocks):
            raise Failure('journal-damaged', 'neither journal block holds a valid record and neither is zero')
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
        if not sparse or not zero(plain):
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
    raise Failure('journal-damaged', f'unit at data-area offset {base} is neither old nor new')
