"""The spec reader's failure classes (spec §7's names, and those QUESTIONS.md Q9 had to make up)."""
import sys

FAILURES = {
    'usage': 2,
    'wrong passphrase': 3,
    'io error': 7,
    'truncated': 10,
    'not a container': 11,
    'unsupported version': 12,
    'checksum mismatch': 13,
    'unsupported feature': 14,
    'invalid field': 15,
    'tampered': 16,
    'no active keyslot': 17,
    'refused secret': 18,
    'journal damaged': 19,
}
# When both copies are invalid, the class of the copy that got furthest through §7 is reported.
STEP_OF = {'truncated': 1, 'not a container': 2, 'unsupported version': 3, 'checksum mismatch': 4,
           'unsupported feature': 5, 'invalid field': 6}


class Failure(Exception):
    def __init__(self, cls, msg, step=None):
        super().__init__(msg)
        self.cls = cls
        self.step = step if step is not None else STEP_OF.get(cls, 7)


def warn(msg):
    sys.stderr.write(f'spec-reader: warning: {msg}\n')
