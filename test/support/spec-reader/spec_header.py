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
    raise Failure('invalid-field', f'{where} copy: {msg}')


def parse_copy(raw, where, offset, file_size=None):
    """§7 steps 1–6 for the copy read at `offset`; `where` is 'primary' or 'secondary'. With
    `file_size` None (a copy alone, spec/vectors/copies) its place in a file is not checked."""
    if len(raw) < HEADER:
        raise Failure('truncated', f'{where} copy: only {len(raw)} of 4096 bytes at offset {offset}')
    if raw[0:8] != b'VAULTVOL':
        raise Failure('not-a-container', f'{where} copy: no VAULTVOL magic at offset {offset}')
    version, header_size = struct.unpack_from('<HH', raw, 8)
    if version > 1:
        raise Failure('unsupported-version', f'{where} copy: format version {version} (this reader knows 1)')
    if version == 0:
        _invalid(where, 'version 0')
    if header_size != HEADER:
        _invalid(where, f'header_size {header_size}, not 4096')
    if hashlib.sha256(raw[:4064]).digest() != raw[4064:4096]:
        raise Failure('checksum-mismatch', f'{where} copy: SHA-256 checksum mismatch (damaged)')
    c = Copy(raw, where, offset)
    if c.flags & ~(FLAG_REENCRYPT | FLAG_TOKENS):
        raise Failure('unsupported-feature', f'{where} copy: unknown flags 0x{c.flags:08x}')
    _check_structure(c, where)
    if file_size is not None:
        _check_place(c, where, offset, file_size)
    return c


def _check_place(c, where, offset, file_size):
    """The end of §7 step 6 (§6 "Reading")."""
    end = c.data_offset + c.data_size
    if where == 'secondary' and end != offset:
        _invalid(where, f'describes a secondary copy at {end}, read at {offset}')
    if where == 'primary' and end + HEADER > file_size:
        raise Failure('truncated', f'primary copy: the file ({file_size} bytes) is shorter than its geometry '
                                   f'({end + HEADER} bytes)')


def _check_structure(c, where):
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
    if not 1 <= p <= 16 or not (1024 <= m <= 4194304 and m >= 8 * p) or not 1 <= t <= 64:
        raise Failure('kdf-bounds', f'{where} copy: keyslot {i} asks for Argon2id m={m} KiB, t={t}, p={p}, '
                                    'outside the bounds of spec §3')


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
    if not all(0x21 <= b <= 0x7e for b in pl[2:2 + rp_len]):
        bad('rp_id is not printable ASCII without space (§14.4)')
    cred_len = struct.unpack_from('<H', pl, 2 + rp_len)[0]
    if not 1 <= cred_len <= 1023 or len(pl) != 2 + rp_len + 2 + cred_len + 32:
        bad('cred_len / payload length')


def read_at(fd, offset, n):
    try:
        return os.pread(fd, n, offset)
    except OSError as e:
        raise Failure('io-error', f'reading {n} bytes at {offset}: {e.strerror}')


def candidate_copies(fd, file_size):
    """§6 "Reading": the valid copies, newest first (the primary first on a tie), and the failures
    of the invalid ones; raises the one class of §6 when neither copy is valid."""
    if file_size < 2 * HEADER:
        raise Failure('not-a-container', f'a file of {file_size} bytes cannot hold two header copies')

    def take(where, offset):
        try:
            return parse_copy(read_at(fd, offset, HEADER), where, offset, file_size), None
        except Failure as f:
            return None, f

    prim, pf = take('primary', 0)
    end = file_size - HEADER
    sec, sf = take('secondary', end)
    if prim and prim.data_offset + prim.data_size != end:
        at_x, xf = take('secondary', prim.data_offset + prim.data_size)
        # Both valid: the larger sequence, the one at X on a tie. One valid: that one.
        if at_x and (not sec or at_x.sequence >= sec.sequence):
            sec, sf = at_x, None
        elif not sec:
            sf = xf
    found = [c for c in (prim, sec) if c]
    failures = [f for f in (pf, sf) if f]
    if not found:
        raise _neither_valid(pf, sf)
    return sorted(found, key=lambda c: -c.sequence), failures


def _neither_valid(pf, sf):
    """§6 "Reading": the first class that applies when neither copy is valid."""
    classes = (pf.cls, sf.cls)
    both = f'primary: {pf}; secondary: {sf}'
    if classes == ('not-a-container', 'not-a-container'):
        return Failure('not-a-container', f'neither header copy has the VAULTVOL magic ({both})')
    for cls, what in (('unsupported-version', 'a format version newer than 1'),
                      ('unsupported-feature', 'a feature flag this reader does not know')):
        if cls in classes:
            return Failure(cls, f'a header copy has {what}, written by a newer vault ({both})')
    if pf.cls == 'truncated':
        return Failure('truncated', f'the file is shorter than the container ({both})')
    return Failure('headers-damaged', f'both header copies are damaged ({both}); '
                                      'restore them from a header backup (spec §10)')
