"""Secrets and unlocking: spec §4.2-§4.5, §5, §7 step 7, §14.2 and §14.5."""
import hashlib
import hmac
import struct

from spec_crypto import argon2id, hkdf_sha256, xchacha20poly1305_decrypt
from spec_failures import Failure
from spec_header import MIB, SLOTS

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
