"""The software authenticator checked against the CTAP specification's examples.

The byte strings below are the examples of the CTAP 2.0 Proposed Standard (§5.1 authenticatorMakeCredential,
§5.2 authenticatorGetAssertion, §5.4 authenticatorGetInfo), as Yubico's python-fido2 carries them in its
tests (tests/test_ctap2.py): a getInfo response, a makeCredential response (packed attestation with
x5c) and a getAssertion response; the makeCredential request below uses the example's values
(clientDataHash 687134…f141, rp example.com "Acme", user johnpsmith@example.com). The CTAP 2.1 text keeps these
structures. Run: python3 -m unittest test_spec_vectors (from this directory)."""
import hashlib
import hmac
import os
import struct
import sys
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctap2  # noqa: E402
import ctap_cbor as cbor  # noqa: E402

SPEC_INFO = bytes.fromhex(
    'a60182665532465f5632684649444f5f325f3002826375766d6b686d61632d7365637265740350f8a011f38c0a4d15800617111f9edc7d'
    '04a462726bf5627570f564706c6174f469636c69656e7450696ef4051904b0068101')
SPEC_MC_RESP = bytes.fromhex(
    'a301667061636b65640258c40021f5fc0b85cd22e60623bcd7d1ca48948909249b4776eb515154e57b66ae12410000001cf8a011f38c0a4d'
    '15800617111f9edc7d0040fe3aac036d14c1e1c65518b698dd1da8f596bc33e11072813466c6bf3845691509b80fb76d59309b8d39e0a934'
    '52688f6ca3a39a76f3fc52744fb73948b15783a5010203262001215820643566c206dd00227005fa5de69320616ca268043a38f08bde2e9d'
    'c45a5cafaf225820171353b2932434703726aae579fa6542432861fe591e481ea22d63997e1a529003a363616c6726637369675848304602'
    '2100cc1ef43edf07de8f208c21619c78a565ddcf4150766ad58781193be8e0a742ed022100f1ed7c7243e45b7d8e5bda6b1abf10af739178'
    '9d1ef21b70bd69fed48dba4cb163783563815901973082019330820138a003020102020900859b726cb24b4c29300a06082a8648ce3d0403'
    '023047310b300906035504061302555331143012060355040a0c0b59756269636f205465737431223020060355040b0c1941757468656e74'
    '696361746f72204174746573746174696f6e301e170d3136313230343131353530305a170d3236313230323131353530305a3047310b3009'
    '06035504061302555331143012060355040a0c0b59756269636f205465737431223020060355040b0c1941757468656e74696361746f7220'
    '4174746573746174696f6e3059301306072a8648ce3d020106082a8648ce3d03010703420004ad11eb0e8852e53ad5dfed86b41e6134a18e'
    'c4e1af8f221a3c7d6e636c80ea13c3d504ff2e76211bb44525b196c44cb4849979cf6f896ecd2bb860de1bf4376ba30d300b30090603551d'
    '1304023000300a06082a8648ce3d0403020349003046022100e9a39f1b03197525f7373e10ce77e78021731b94d0c03f3fda1fd22db3d030'
    'e7022100c4faec3445a820cf43129cdb00aabefd9ae2d874f9c5d343cb2f113da23723f3')
SPEC_MC_CDH = bytes.fromhex('687134968222ec17202e42505f8ed2b16ae22f16bb05b88c25db9e602645f141')
SPEC_GA_RESP = bytes.fromhex(
    'a301a26269645840fe3aac036d14c1e1c65518b698dd1da8f596bc33e11072813466c6bf3845691509b80fb76d59309b8d39e0a93452688f'
    '6ca3a39a76f3fc52744fb73948b1578364747970656a7075626c69632d6b65790258250021f5fc0b85cd22e60623bcd7d1ca48948909249b'
    '4776eb515154e57b66ae12010000001d035846304402206765cbf6e871d3af7f01ae96f06b13c90f26f54b905c5166a2c791274fc2397102'
    '200b143893586cc799fba4da83b119eaea1bd80ac3ce88fcedb3efbd596a1f4f63')


def parse_auth_data(a: bytes) -> dict:
    """authenticatorData (WebAuthn §6.1) as CTAP lays it out: the test's own parser, independent of ctap2.py."""
    out = {'rp_id_hash': a[:32], 'flags': a[32], 'counter': struct.unpack('>I', a[33:37])[0]}
    rest = a[37:]
    if out['flags'] & 0x40:
        n = struct.unpack('>H', rest[16:18])[0]
        out['aaguid'], out['cred_id'] = rest[:16], rest[18:18 + n]
        rest = rest[18 + n:]
        key_len = _cbor_len(rest)
        out['public_key'], rest = cbor.decode(rest[:key_len]), rest[key_len:]
    if out['flags'] & 0x80:
        out['extensions'], rest = cbor.decode(rest), b''
    assert rest == b'', 'trailing bytes in authenticatorData'
    return out


def _cbor_len(data: bytes) -> int:
    """Length of the first CBOR item of data."""
    return cbor._item(data, 0, 0)[1]


def p256(cose: dict) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(int.from_bytes(cose[-2], 'big'), int.from_bytes(cose[-3], 'big'), ec.SECP256R1()).public_key()


class SpecExamples(unittest.TestCase):
    def test_cbor_decodes_and_reencodes_the_spec_examples_byte_for_byte(self):
        info = cbor.decode(SPEC_INFO)
        self.assertEqual(info[1], ['U2F_V2', 'FIDO_2_0'])
        self.assertEqual(info[2], ['uvm', 'hmac-secret'])
        self.assertEqual(info[3], bytes.fromhex('f8a011f38c0a4d15800617111f9edc7d'))
        self.assertEqual(info[4], {'rk': True, 'up': True, 'plat': False, 'clientPin': False})
        self.assertEqual((info[5], info[6]), (1200, [1]))
        for example in (SPEC_INFO, SPEC_MC_RESP, SPEC_GA_RESP):
            self.assertEqual(cbor.encode(cbor.decode(example)), example)  # CTAP2 canonical form

    def test_the_auth_data_parser_reads_the_spec_examples(self):
        mc = cbor.decode(SPEC_MC_RESP)
        ad = parse_auth_data(mc[2])
        self.assertEqual((ad['flags'], ad['counter']), (0x41, 28))
        self.assertEqual(len(ad['cred_id']), 64)
        self.assertEqual(ad['public_key'][3], -7)
        self.assertEqual(mc[1], 'packed')
        self.assertEqual(sorted(mc[3]), ['alg', 'sig', 'x5c'])
        self.assertEqual(mc[3]['alg'], -7)
        x509.load_der_x509_certificate(mc[3]['x5c'][0])
        ga = cbor.decode(SPEC_GA_RESP)
        self.assertEqual(ga[1], {'type': 'public-key', 'id': ad['cred_id']})
        gad = parse_auth_data(ga[2])
        self.assertEqual((gad['flags'], gad['counter'], gad['rp_id_hash']), (0x01, 29, ad['rp_id_hash']))


class SoftAuthenticatorLikeTheSpec(unittest.TestCase):
    """The software authenticator's answers, shaped as the spec examples are."""

    def setUp(self):
        self.auth = ctap2.Authenticator(os.urandom(32), None, False, False, lambda: ctap2.OK)

    def call(self, cmd: int, params) -> dict:
        resp = self.auth.handle(bytes([cmd]) + (cbor.encode(params) if params is not None else b''))
        self.assertEqual(resp[0], 0, f'CTAP2 status 0x{resp[0]:02x}')
        body = cbor.decode(resp[1:])
        self.assertEqual(cbor.encode(body), resp[1:])  # canonical, like the examples
        return body

    def test_get_info_has_the_example_layout(self):
        info = self.call(0x04, None)
        self.assertEqual(sorted(info), [1, 2, 3, 4, 5, 6])
        self.assertIn('FIDO_2_0', info[1])
        self.assertEqual(info[2], ['hmac-secret'])
        self.assertEqual(len(info[3]), 16)

    def make_credential(self):
        rp = {'id': 'example.com', 'name': 'Acme'}
        user = {'id': b'\x30\x82\x01\x93', 'name': 'johnpsmith@example.com', 'displayName': 'John P. Smith'}
        return self.call(0x01, {1: SPEC_MC_CDH, 2: rp, 3: user, 4: [{'alg': -7, 'type': 'public-key'}, {'alg': -257, 'type': 'public-key'}],
                                6: {'hmac-secret': True}})

    def test_make_credential_then_get_assertion_with_hmac_secret(self):
        mc = self.make_credential()
        self.assertEqual(mc[1], 'packed')
        ad = parse_auth_data(mc[2])
        self.assertEqual(ad['rp_id_hash'], hashlib.sha256(b'example.com').digest())
        self.assertEqual(ad['flags'], 0x41 | 0x80)  # UP, AT, ED
        self.assertEqual(ad['extensions'], {'hmac-secret': True})
        self.assertEqual(ad['public_key'][1], 2)
        self.assertEqual(ad['public_key'][3], -7)
        p256(ad['public_key']).verify(mc[3]['sig'], mc[2] + SPEC_MC_CDH, ec.ECDSA(hashes.SHA256()))  # self attestation

        # The platform side of hmac-secret (§12.5, PIN/UV auth protocol one, §6.5.6), written here from the spec text.
        ka = self.call(0x06, {1: 1, 2: 0x02})[1]
        self.assertEqual((ka[1], ka[3], ka[-1]), (2, -25, 1))
        platform = ec.generate_private_key(ec.SECP256R1())
        shared = hashlib.sha256(platform.exchange(ec.ECDH(), p256(ka))).digest()
        salt = os.urandom(32)
        enc = Cipher(algorithms.AES(shared), modes.CBC(b'\0' * 16)).encryptor()
        salt_enc = enc.update(salt) + enc.finalize()
        n = platform.public_key().public_numbers()
        ext = {'hmac-secret': {1: {1: 2, 3: -25, -1: 1, -2: n.x.to_bytes(32, 'big'), -3: n.y.to_bytes(32, 'big')}, 2: salt_enc,
                               3: hmac.new(shared, salt_enc, hashlib.sha256).digest()[:16]}}
        cdh = os.urandom(32)
        ga = self.call(0x02, {1: 'example.com', 2: cdh, 3: [{'id': ad['cred_id'], 'type': 'public-key'}], 4: ext})
        self.assertEqual(ga[1], {'id': ad['cred_id'], 'type': 'public-key'})
        gad = parse_auth_data(ga[2])
        self.assertEqual(gad['flags'], 0x01 | 0x80)
        p256(ad['public_key']).verify(ga[3], ga[2] + cdh, ec.ECDSA(hashes.SHA256()))
        dec = Cipher(algorithms.AES(shared), modes.CBC(b'\0' * 16)).decryptor()
        output = dec.update(gad['extensions']['hmac-secret']) + dec.finalize()
        _, _, cred_random = self.auth._unwrap(ad['rp_id_hash'], ad['cred_id'])
        self.assertEqual(output, hmac.new(cred_random, salt, hashlib.sha256).digest())
        # A wrong saltAuth is refused.
        ext['hmac-secret'][3] = bytes(16)
        resp = self.auth.handle(b'\x02' + cbor.encode({1: 'example.com', 2: cdh, 3: [{'id': ad['cred_id'], 'type': 'public-key'}], 4: ext}))
        self.assertEqual(resp, bytes([ctap2.INVALID_PARAMETER]))

    def test_another_relying_party_or_authenticator_finds_no_credential(self):
        cred_id = parse_auth_data(self.make_credential()[2])['cred_id']
        other = ctap2.Authenticator(os.urandom(32), None, False, False, lambda: ctap2.OK)
        for auth, rp in ((self.auth, 'example.org'), (other, 'example.com')):
            resp = auth.handle(b'\x02' + cbor.encode({1: rp, 2: bytes(32), 3: [{'id': cred_id, 'type': 'public-key'}]}))
            self.assertEqual(resp, bytes([ctap2.NO_CREDENTIALS]))


if __name__ == '__main__':
    unittest.main()
