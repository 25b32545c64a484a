"""The spec reader's failure classes: spec §7 "Failure classes" (normative names), then the few
classes of its own for what the spec leaves to the tool (a usage error, an I/O error, a secret
refused before any derivation, a damaged re-encryption journal)."""
import sys

FAILURES = {
    'usage': 2,
    'wrong-passphrase': 3,
    'io-error': 7,
    'truncated': 10,
    'not-a-container': 11,
    'unsupported-version': 12,
    'checksum-mismatch': 13,
    'unsupported-feature': 14,
    'invalid-field': 15,
    'header-tampered': 16,
    'no-keyslot': 17,
    'refused-secret': 18,
    'journal-damaged': 19,
    'kdf-bounds': 20,
    'headers-damaged': 21,
    'copies-disagree': 22,
}


class Failure(Exception):
    def __init__(self, cls, msg):
        super().__init__(msg)
        assert cls in FAILURES, cls
        self.cls = cls


def warn(msg):
    sys.stderr.write(f'spec-reader: warning: {msg}\n')
