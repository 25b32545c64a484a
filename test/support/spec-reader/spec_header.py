"""Header copies: spec §2, §3, §6 "Reading", §7 steps 1-6, §13.2 and §14.1."""
import hashlib
import os
import struct

from spec_failures import Failure

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


def zero(b):
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
    if not zero(raw[97:128]):
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
    elif not zero(raw[RE_AREA[0]:RE_AREA[1]]):
        _invalid(where, 'reserved bytes 1408-2247 not zero')
    if c.flags & FLAG_TOKENS:
        _check_tokens(c, where)
    elif not zero(raw[TOKEN_AREA[0]:TOKEN_AREA[1]]):
        _invalid(where, 'reserved bytes 2248-4031 not zero')


def _check_slot(s, i, where):
    kdf = s[1]
    m, t, p = struct.unpack_from('<III', s, 4)
    if kdf != 1:
        _invalid(where, f'keyslot {i} kdf {kdf}')
    if not zero(s[2:4]) or not zero(s[152:160]):
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
    if not zero(raw[1412:1416]):
        _invalid(where, 'reserved bytes 1412-1415 not zero')
    if not c.active():
        _invalid(where, 'a flagged header without an active keyslot')
    for i in range(SLOTS):
        staged = raw[1416 + 104 * i:1416 + 104 * (i + 1)]
        if c.slots[i][0] == 0 and not zero(staged):
            _invalid(where, f'staged wrap of empty slot {i} not zero')


def _check_tokens(c, where):
    area = c.raw[TOKEN_AREA[0]:TOKEN_AREA[1]]
    pos, tokens = 0, {}
    while pos < len(area):
        if area[pos] == 0:
            if not zero(area[pos:]):
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
