"""The CTAP2 commands of the software authenticator (CTAP 2.1 §6): authenticatorGetInfo,
authenticatorMakeCredential (ES256, non-resident), authenticatorGetAssertion, the hmac-secret
extension (§12.5) and authenticatorClientPIN (PIN/UV auth protocols one and two). Test support only:
this simulates the security key, never vault."""
import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import ctap_cbor as cbor
from pin_protocol import PinProtocol, PinProtocolError, cose_p256

# CTAP2 status codes (§8.2.1).
OK, INVALID_COMMAND, INVALID_PARAMETER, INVALID_LENGTH = 0x00, 0x01, 0x02, 0x03
CBOR_UNEXPECTED_TYPE, INVALID_CBOR, MISSING_PARAMETER = 0x11, 0x12, 0x14
UNSUPPORTED_ALGORITHM, OPERATION_DENIED, UNSUPPORTED_OPTION, INVALID_OPTION = 0x26, 0x27, 0x2B, 0x2C
NO_CREDENTIALS, USER_ACTION_TIMEOUT = 0x2E, 0x2F
PIN_INVALID, PIN_BLOCKED, PIN_AUTH_INVALID, PIN_AUTH_BLOCKED, PIN_NOT_SET, PUAT_REQUIRED = 0x31, 0x32, 0x33, 0x34, 0x35, 0x36
PIN_POLICY_VIOLATION, UP_REQUIRED, INVALID_SUBCOMMAND, UNAUTHORIZED_PERMISSION = 0x37, 0x3B, 0x3E, 0x40

PERM_MC, PERM_GA = 0x01, 0x02
FLAG_UP, FLAG_UV, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x40, 0x80
AAGUID = bytes.fromhex('7661756c742d736f66742d6669646f32')  # "vault-soft-fido2"
MAX_RETRIES = 8
CRED_VERSION = 1


class CtapError(Exception):
    def __init__(self, status: int):
        super().__init__(f'CTAP2 error 0x{status:02x}')
        self.status = status


def need(cond, status=INVALID_PARAMETER):
    if not cond:
        raise CtapError(status)


class Authenticator:
    """config: master (32 bytes), pin (str or None), uv (built-in user verification), ctap21 (advertise
    FIDO_2_1 with pinUvAuthToken and protocol 2 first), presence(): returns a CTAP status, OK when the user
    touched the key. up_always: refuse getAssertion with up=false (CTAP2_ERR_UP_REQUIRED), as some keys do.
    always_uv: CTAP 2.1's alwaysUv (§6.2.2, §7.2.4): every getAssertion needs user verification (the PIN
    here), else CTAP2_ERR_PUAT_REQUIRED, which libfido2 reports as FIDO_ERR_PIN_REQUIRED."""

    def __init__(self, master: bytes, pin, uv: bool, ctap21: bool, presence, log=lambda line: None, up_always=False, always_uv=False):
        self.up_always = up_always
        self.always_uv = always_uv
        self.log = log  # one line per command, no secrets: the tests read which protocol libfido2 chose
        self.cred_key = HKDF(hashes.SHA256(), 32, None, b'vault-soft-fido2 credential wrapping').derive(master)
        self.pin_hash = hashlib.sha256(pin.encode()).digest()[:16] if pin else None
        self.retries, self.consecutive_fails = MAX_RETRIES, 0
        self.uv, self.ctap21, self.presence = uv, ctap21, presence
        self.protocols = {v: PinProtocol(v) for v in (1, 2)}
        self.token, self.token_perms, self.token_rp = os.urandom(32), 0, None
        self.counter = 0

    # -- dispatch ---------------------------------------------------------------------------------

    def handle(self, request: bytes) -> bytes:
        """One CTAPHID_CBOR message: command byte + CBOR parameters -> status byte + CBOR response."""
        if not request:
            return bytes([INVALID_LENGTH])
        cmd, body = request[0], request[1:]
        self.log(f'cmd 0x{cmd:02x}')
        handler = {0x01: self.make_credential, 0x02: self.get_assertion, 0x04: self.get_info, 0x06: self.client_pin}.get(cmd)
        if handler is None:
            return bytes([INVALID_COMMAND])
        try:
            params = cbor.decode(body) if body else {}
            if not isinstance(params, dict):
                raise CtapError(CBOR_UNEXPECTED_TYPE)
            result = handler(params)
        except cbor.CborError:
            return bytes([INVALID_CBOR])
        except PinProtocolError:
            return bytes([INVALID_PARAMETER])
        except CtapError as e:
            return bytes([e.status])
        return b'\x00' + (cbor.encode(result) if result is not None else b'')

    def get_info(self, _params):
        options = {'rk': False, 'up': True, 'plat': False, 'clientPin': self.pin_hash is not None}
        if self.uv:
            options['uv'] = True
        if self.ctap21:
            options['pinUvAuthToken'] = True
        if self.always_uv:
            options['alwaysUv'] = True
        return {
            1: ['FIDO_2_0', 'FIDO_2_1'] if self.ctap21 else ['FIDO_2_0'],
            2: ['hmac-secret'],
            3: AAGUID,
            4: options,
            5: 1200,
            6: [2, 1] if self.ctap21 else [1],
        }

    # -- credentials ------------------------------------------------------------------------------

    def _wrap(self, rp_hash: bytes, d: bytes, cr_uv: bytes, cr_no_uv: bytes) -> bytes:
        nonce = os.urandom(12)
        return bytes([CRED_VERSION]) + nonce + AESGCM(self.cred_key).encrypt(nonce, d + cr_uv + cr_no_uv, rp_hash)

    def _unwrap(self, rp_hash: bytes, cred_id):
        """(private key, CredRandomWithUV, CredRandomWithoutUV), or None: not ours or not for this RP."""
        if not isinstance(cred_id, bytes) or len(cred_id) != 1 + 12 + 96 + 16 or cred_id[0] != CRED_VERSION:
            return None
        try:
            plain = AESGCM(self.cred_key).decrypt(cred_id[1:13], cred_id[13:], rp_hash)
        except InvalidTag:
            return None
        key = ec.derive_private_key(int.from_bytes(plain[:32], 'big'), ec.SECP256R1())
        return key, plain[32:64], plain[64:96]

    def _touch(self):
        status = self.presence()
        need(status == OK, status)

    def _check_pin_auth(self, params, cdh_key, auth_key, proto_key, perm, rp_id) -> bool:
        """Verifies pinUvAuthParam when present: True (user verified), False (absent)."""
        if auth_key not in params:
            return False
        proto = self.protocols.get(params.get(proto_key))
        need(proto is not None, MISSING_PARAMETER if proto_key not in params else INVALID_PARAMETER)
        need(proto.verify(self.token, params[cdh_key], params[auth_key]), PIN_AUTH_INVALID)
        if self.ctap21:
            need(self.token_perms & perm, UNAUTHORIZED_PERMISSION)
            need(self.token_rp in (None, rp_id), UNAUTHORIZED_PERMISSION)
            self.token_rp = rp_id
        return True

    def _user_verification(self, params, options, cdh_key, auth_key, proto_key, perm, rp_id) -> bool:
        if self._check_pin_auth(params, cdh_key, auth_key, proto_key, perm, rp_id):
            return True  # §6.1.2 step 6: with a pinUvAuthParam the "uv" option is ignored
        if options.get('uv'):
            need(self.uv, INVALID_OPTION if self.pin_hash is None else PUAT_REQUIRED)
            return True  # built-in user verification: this simulated one always recognises the user
        return False

    def make_credential(self, p):
        for k in (1, 2, 3, 4):
            need(k in p, MISSING_PARAMETER)
        cdh, rp, user, algs = p[1], p[2], p[3], p[4]
        need(isinstance(cdh, bytes) and isinstance(rp, dict) and isinstance(rp.get('id'), str) and isinstance(user, dict), CBOR_UNEXPECTED_TYPE)
        need(isinstance(algs, list), CBOR_UNEXPECTED_TYPE)
        need(any(isinstance(a, dict) and a.get('type') == 'public-key' and a.get('alg') == -7 for a in algs), UNSUPPORTED_ALGORITHM)
        options = p.get(7, {})
        need(isinstance(options, dict), CBOR_UNEXPECTED_TYPE)
        need(not options.get('rk'), UNSUPPORTED_OPTION)  # this key keeps no discoverable credentials
        need(options.get('up', True), INVALID_OPTION)
        uv = self._user_verification(p, options, 1, 8, 9, PERM_MC, rp['id'])
        need(uv or self.pin_hash is None, PUAT_REQUIRED)  # a key with a PIN makes credentials only after it
        self._touch()
        ext = p.get(6, {})
        need(isinstance(ext, dict), CBOR_UNEXPECTED_TYPE)
        rp_hash = hashlib.sha256(rp['id'].encode()).digest()
        key = ec.generate_private_key(ec.SECP256R1())
        cred_id = self._wrap(rp_hash, key.private_numbers().private_value.to_bytes(32, 'big'), os.urandom(32), os.urandom(32))
        self.counter += 1
        flags = FLAG_UP | FLAG_AT | (FLAG_UV if uv else 0)
        ext_out = {'hmac-secret': True} if ext.get('hmac-secret') is True else {}
        if ext_out:
            flags |= FLAG_ED
        auth_data = (rp_hash + bytes([flags]) + struct.pack('>I', self.counter) + AAGUID + struct.pack('>H', len(cred_id)) + cred_id +
                     cbor.encode(cose_p256(key.public_key(), -7)) + (cbor.encode(ext_out) if ext_out else b''))
        sig = key.sign(auth_data + cdh, ec.ECDSA(hashes.SHA256()))
        return {1: 'packed', 2: auth_data, 3: {'alg': -7, 'sig': sig}}  # self attestation (§8.2 of WebAuthn)

    def get_assertion(self, p):
        for k in (1, 2):
            need(k in p, MISSING_PARAMETER)
        rp_id, cdh = p[1], p[2]
        need(isinstance(rp_id, str) and isinstance(cdh, bytes), CBOR_UNEXPECTED_TYPE)
        options = p.get(5, {})
        need(isinstance(options, dict), CBOR_UNEXPECTED_TYPE)
        need(not options.get('rk'), UNSUPPORTED_OPTION)
        uv = self._user_verification(p, options, 2, 6, 7, PERM_GA, rp_id)
        need(uv or not self.always_uv, PUAT_REQUIRED)
        rp_hash = hashlib.sha256(rp_id.encode()).digest()
        allow = p.get(3, [])
        need(isinstance(allow, list), CBOR_UNEXPECTED_TYPE)
        found = None
        for desc in allow:
            need(isinstance(desc, dict), CBOR_UNEXPECTED_TYPE)
            found = self._unwrap(rp_hash, desc.get('id'))
            if found is not None:
                cred_id = desc['id']
                break
        need(found is not None, NO_CREDENTIALS)  # non-resident only: an empty allow list finds nothing either
        key, cr_uv, cr_no_uv = found
        up = options.get('up', True)
        need(up or not self.up_always, UP_REQUIRED)
        if up:
            self._touch()
        flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0)
        ext = p.get(4, {})
        need(isinstance(ext, dict), CBOR_UNEXPECTED_TYPE)
        ext_out = {}
        if 'hmac-secret' in ext:
            ext_out['hmac-secret'] = self._hmac_secret(ext['hmac-secret'], cr_uv if uv else cr_no_uv)
            flags |= FLAG_ED
        self.counter += 1
        auth_data = rp_hash + bytes([flags]) + struct.pack('>I', self.counter) + (cbor.encode(ext_out) if ext_out else b'')
        sig = key.sign(auth_data + cdh, ec.ECDSA(hashes.SHA256()))
        return {1: {'id': cred_id, 'type': 'public-key'}, 2: auth_data, 3: sig}

    def _hmac_secret(self, ext, cred_random: bytes) -> bytes:
        """§12.5 hmac-secret, getAssertion: salts decrypted with the shared secret, output1 =
        HMAC-SHA-256(CredRandom, salt1) [, output2 for salt2], returned encrypted."""
        need(isinstance(ext, dict) and all(k in ext for k in (1, 2, 3)), MISSING_PARAMETER)
        proto = self.protocols.get(ext.get(4, 1))
        need(proto is not None, INVALID_PARAMETER)
        self.log(f'hmac-secret protocol {proto.version}')
        shared = proto.shared_secret(ext[1])
        need(isinstance(ext[2], bytes), CBOR_UNEXPECTED_TYPE)
        need(proto.verify(shared, ext[2], ext[3]), INVALID_PARAMETER)  # saltAuth
        salts = proto.decrypt(shared, ext[2])
        need(len(salts) in (32, 64), INVALID_LENGTH)
        out = b''.join(hmac.new(cred_random, salts[i:i + 32], hashlib.sha256).digest() for i in range(0, len(salts), 32))
        return proto.encrypt(shared, out)

    # -- clientPIN (§6.5.5) -----------------------------------------------------------------------

    def client_pin(self, p):
        need(1 in p and 2 in p, MISSING_PARAMETER)
        proto = self.protocols.get(p[1])
        need(proto is not None, INVALID_PARAMETER)
        sub = p[2]
        self.log(f'clientPIN sub 0x{sub:02x} protocol {p[1]}')
        if sub == 0x01:  # getPINRetries
            return {3: self.retries}
        if sub == 0x02:  # getKeyAgreement
            return {1: proto.get_public_key()}
        if sub == 0x03:  # setPIN
            return self._set_pin(proto, p)
        if sub in (0x05, 0x09):  # getPinToken, getPinUvAuthTokenUsingPinWithPermissions
            return self._pin_token(proto, p, sub == 0x09)
        if sub == 0x06:  # getPinUvAuthTokenUsingUvWithPermissions
            need(self.uv and self.ctap21, INVALID_SUBCOMMAND)
            need(3 in p and 9 in p, MISSING_PARAMETER)
            return {2: self._new_token(proto, proto.shared_secret(p[3]), p[9], p.get(10))}
        raise CtapError(INVALID_SUBCOMMAND)

    def _set_pin(self, proto, p):
        need(all(k in p for k in (3, 4, 5)), MISSING_PARAMETER)
        need(self.pin_hash is None, PIN_AUTH_INVALID)
        shared = proto.shared_secret(p[3])
        need(proto.verify(shared, p[5], p[4]), PIN_AUTH_INVALID)
        padded = proto.decrypt(shared, p[5])
        need(len(padded) == 64, INVALID_PARAMETER)
        pin = padded.rstrip(b'\x00')
        need(4 <= len(pin) <= 63, PIN_POLICY_VIOLATION)
        self.pin_hash, self.retries = hashlib.sha256(pin).digest()[:16], MAX_RETRIES
        return None

    def _pin_token(self, proto, p, with_permissions: bool):
        need(3 in p and 6 in p, MISSING_PARAMETER)
        if with_permissions:
            need(self.ctap21, INVALID_SUBCOMMAND)
            need(9 in p and p[9], MISSING_PARAMETER)
        need(self.pin_hash is not None, PIN_NOT_SET)
        need(self.retries > 0, PIN_BLOCKED)
        need(self.consecutive_fails < 3, PIN_AUTH_BLOCKED)
        shared = proto.shared_secret(p[3])
        self.retries -= 1
        if not hmac.compare_digest(proto.decrypt(shared, p[6]), self.pin_hash):
            proto.regenerate()
            self.consecutive_fails += 1
            need(self.retries > 0, PIN_BLOCKED)
            need(self.consecutive_fails < 3, PIN_AUTH_BLOCKED)
            raise CtapError(PIN_INVALID)
        self.retries, self.consecutive_fails = MAX_RETRIES, 0
        perms = p[9] if with_permissions else PERM_MC | PERM_GA
        return {2: self._new_token(proto, shared, perms, p.get(10))}

    def _new_token(self, proto, shared, perms, rp_id):
        need(isinstance(perms, int) and perms & (PERM_MC | PERM_GA) and not perms & ~0xff, INVALID_PARAMETER)
        self.token, self.token_perms, self.token_rp = os.urandom(32), perms, rp_id
        return proto.encrypt(shared, self.token)
