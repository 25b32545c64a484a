"""Secrets and unlocking: spec §4.2-§4.5, §5, §7 step 7, §14.2 and §14.5."""
import hashlib
import hmac
import struct

from spec_crypto import argon2id, hkdf_sha256, xchacha20poly1305_decrypt
from spec_failures import Failure, warn
from spec_header import MIB, SLOTS

MODHEX = 'cbdefghijklnrtuv'


def recovery_key(pw):
    if len(pw) > 128:  # §14.2: at most 128 bytes of input
        return None
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
            raise Failure('refused-secret', 'an empty passphrase without keyfiles is refused')
        return pw
    hashes = []
    for f in keyfiles:
        try:
            with open(f, 'rb') as fh:
                data = fh.read(MIB + 1)
        except OSError as e:
            raise Failure('io-error', f'keyfile {f}: {e.strerror}')
        if not 1 <= len(data) <= MIB:
            raise Failure('refused-secret', f'keyfile {f} must be 1 to 1048576 bytes long')
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


def mac_ok(c, mk):
    """§5: the copy's `mac` under the K_mac of `mk` (§4.5)."""
    k_mac = hkdf_sha256(mk, c.uuid, b'vault-header-mac-v1', 32)
    return hmac.compare_digest(hmac.new(k_mac, c.raw[:4032], hashlib.sha256).digest(), c.raw[4032:4064])


def tried_slots(c, secrets, only_slot):
    return [i for i in range(SLOTS) if any(i in _slots_for(c, kind, only_slot) for kind, _ in secrets)]


def unlock_copy(c, secrets, only_slot, cache):
    """§4.4 then §7 step 7 on one copy (§6 "Unlocking and fallback"): (slot, MK, KEK) when it opens;
    raises 'header-tampered' when a slot's tag verifies but the copy fails step 7 (its later slots are
    not tried), 'wrong-passphrase' when no slot's tag verifies.
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
                raise Failure('header-tampered', f'{c.where} copy: keyslot {i} holds a master key with equal halves')
            if not mac_ok(c, mk):
                raise Failure('header-tampered', f'{c.where} copy: header MAC mismatch after keyslot {i} opened')
            return i, mk, kek
    raise Failure('wrong-passphrase', f'{c.where} copy (sequence {c.sequence}): no keyslot opened with this secret')


def unlock(copies, secrets, only_slot):
    """§6 "Unlocking and fallback": the valid copies newest first; the first that opens is G.
    Returns G, its slot, MK, KEK and the failures of the copies tried before it."""
    if not any(tried_slots(c, secrets, only_slot) for c in copies):
        raise Failure('no-keyslot', 'no valid header copy has an active keyslot this secret may be tried on')
    cache, failures = {}, []
    for c in copies:
        try:
            slot, mk, kek = unlock_copy(c, secrets, only_slot, cache)
        except Failure as f:
            failures.append(f)
            continue
        return c, slot, mk, kek, failures
    tampered = [f for f in failures if f.cls == 'header-tampered']
    raise tampered[0] if tampered else Failure('wrong-passphrase', 'no keyslot of any header copy opened with '
                                                                   'this secret')


def check_agreement(g, mk, copies):
    """§6 "Agreement" 2, after G opened: the other valid copy, if authentic under G's key, MUST agree
    with G; one that does not authenticate is not used (a warning)."""
    for o in copies:
        if o is g:
            continue
        if not mac_ok(o, mk):
            warn(f'the {o.where} copy (sequence {o.sequence}) does not authenticate under the key of the '
                 f'{g.where} copy and is not used; vault header repair rewrites it')
            continue
        if o.sequence == g.sequence:
            same = o.raw[:96] + o.raw[97:4032] == g.raw[:96] + g.raw[97:4032]
            if not same:
                raise Failure('copies-disagree', f'both copies are authentic with sequence {g.sequence} but differ')
        elif (o.sector_size, o.data_offset) != (g.sector_size, g.data_offset):
            raise Failure('copies-disagree', f'authentic copies of sequences {g.sequence} and {o.sequence} differ '
                                             'in sector_size or data_offset')
        elif o.sequence < g.sequence:
            warn(f'the {o.where} copy is older (sequence {o.sequence} < {g.sequence}); vault header repair '
                 'rewrites it')


def check_uuids(copies):
    """§6 "Agreement" 1, before any key derivation."""
    if len({c.uuid for c in copies}) > 1:
        raise Failure('copies-disagree', 'the two header copies name two containers (different uuids); '
                                         'restore the right header from a backup (spec §10)')
