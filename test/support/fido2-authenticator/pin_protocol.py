"""PIN/UV auth protocols one and two (CTAP 2.1 §6.5.6 and §6.5.7), authenticator side: the key
agreement key, the shared secret, encrypt/decrypt and authenticate/verify. Test support only."""
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class PinProtocolError(ValueError):
    pass


def cose_p256(pub: ec.EllipticCurvePublicKey, alg: int) -> dict:
    """A P-256 public key as a COSE_Key map (kty EC2, crv P-256)."""
    n = pub.public_numbers()
    return {1: 2, 3: alg, -1: 1, -2: n.x.to_bytes(32, 'big'), -3: n.y.to_bytes(32, 'big')}


def p256_from_cose(key) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, dict) or key.get(1) != 2 or key.get(-1) != 1:
        raise PinProtocolError('keyAgreement is not a P-256 COSE key')
    x, y = key.get(-2), key.get(-3)
    if not isinstance(x, bytes) or not isinstance(y, bytes) or len(x) != 32 or len(y) != 32:
        raise PinProtocolError('keyAgreement coordinates must be 32 bytes')
    try:
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, 'big'), int.from_bytes(y, 'big'), ec.SECP256R1()).public_key()
    except ValueError as e:  # not on the curve
        raise PinProtocolError(str(e)) from e


def _cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    if len(data) % 16:
        raise PinProtocolError('ciphertext is not a whole number of AES blocks')
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


class PinProtocol:
    """One protocol version: `version` is 1 or 2."""

    def __init__(self, version: int):
        if version not in (1, 2):
            raise PinProtocolError('unsupported pinUvAuthProtocol')
        self.version = version
        self.regenerate()

    def regenerate(self):
        self.key = ec.generate_private_key(ec.SECP256R1())

    def get_public_key(self) -> dict:
        # alg -25: ECDH-ES+HKDF-256, as §6.5.6 prescribes for getKeyAgreement, whatever the version.
        return cose_p256(self.key.public_key(), -25)

    def shared_secret(self, peer_cose) -> bytes:
        z = self.key.exchange(ec.ECDH(), p256_from_cose(peer_cose))  # the x-coordinate
        if self.version == 1:
            return hashlib.sha256(z).digest()
        def hkdf(info: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, b'\x00' * 32, info).derive(z)
        return hkdf(b'CTAP2 HMAC key') + hkdf(b'CTAP2 AES key')

    def encrypt(self, shared: bytes, data: bytes) -> bytes:
        if self.version == 1:
            return _cbc(shared, b'\x00' * 16, data, True)
        iv = os.urandom(16)
        return iv + _cbc(shared[32:], iv, data, True)

    def decrypt(self, shared: bytes, data: bytes) -> bytes:
        if self.version == 1:
            return _cbc(shared, b'\x00' * 16, data, False)
        if len(data) < 16:
            raise PinProtocolError('ciphertext shorter than its IV')
        return _cbc(shared[32:], data[:16], data[16:], False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        """key: a shared secret (version 2 uses its HMAC half) or a pinUvAuthToken."""
        if self.version == 1:
            return hmac.new(key, message, hashlib.sha256).digest()[:16]
        return hmac.new(key[:32], message, hashlib.sha256).digest()

    def verify(self, key: bytes, message: bytes, signature) -> bool:
        return isinstance(signature, bytes) and hmac.compare_digest(self.authenticate(key, message), signature)
