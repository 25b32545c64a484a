#!/usr/bin/env python3
"""An independent reader of vault containers, written from spec/format.md alone (issue 20).

It validates the header copies (spec §6, §7), unlocks a keyslot (§3, §4, §14), verifies the header
MAC (§5) and writes the decrypted data area, the plaintext block device image (§8), to OUTPUT.
It never writes to the container. Primitives come from system libraries through ctypes: OpenSSL's
libcrypto (AES-256-XTS, ChaCha20-Poly1305) and libargon2 (Argon2id); SHA-256, HMAC and HKDF from
the standard library. HChaCha20 (the XChaCha20 subkey step) is written out (spec_crypto.py).
Modules: spec_header.py (the copies, §2 §6 §7), spec_unlock.py (secrets and keyslots, §4 §14),
spec_reencrypt.py (§13), this file (the data area, §8, and the command line).

usage: vault_spec_reader.py CONTAINER OUTPUT [--keyfile F ...] [--slot N] [--raw-secret]
                            [--reencrypt-view]
       vault_spec_reader.py --copy primary|secondary COPY...
The secret is read from standard input, all of it less exactly one trailing newline (§4.2), as
vault's --password-stdin. With --raw-secret, stdin holds the hex of a token slot's 32-byte secret
(§14: TPM2/FIDO2 secrets, which a reader gets from a device); it is tried as P on those tokens' slots.
A 64-character modhex input (spaces and '-' removed, any case) is a recovery key (§14.2).
With --reencrypt-view a container part-way through a re-encryption (§13) is read as it would be
after the run finished, computed in memory, nothing written; without it such a container is refused.

With --copy, header copies alone (4096 bytes each, as in spec/vectors/copies) are validated with §7
steps 1–6 as if read at that position (their place in a file is not checked); stdout gets one line
`<class or ok><TAB><file>` per copy.

Exit codes: 0 success, and one per failure class (spec_failures.FAILURES: spec §7's class names, plus
usage, io-error, refused-secret and journal-damaged); the class and a message go to stderr as one line
`spec-reader: <class>: <message>`. Warnings are lines `spec-reader: warning: ...`.
"""
import os
import stat
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the sources in the repository
from spec_crypto import Xts, self_test
from spec_failures import FAILURES, Failure, warn
from spec_header import FLAG_REENCRYPT, MIB, candidate_copies, parse_copy, read_at, zero
from spec_reencrypt import reencrypt_view
from spec_unlock import check_agreement, check_uuids, kdf_input, recovery_key, unlock


def decrypt_area(fd, out, c, mk):
    xts = Xts(mk)
    ss = c.sector_size
    sparse = stat.S_ISREG(os.fstat(out).st_mode)  # a regular file keeps holes; a device gets zeros
    chunk = max(ss, MIB)
    for base in range(0, c.data_size, chunk):
        buf = read_at(fd, c.data_offset + base, min(chunk, c.data_size - base))
        if len(buf) != min(chunk, c.data_size - base):
            raise Failure('truncated', f'data area ends early at data-area offset {base + len(buf)}')
        for o in range(0, len(buf), ss):
            sec = buf[o:o + ss]
            if zero(sec):  # §8: a hole reads as zeros
                if not sparse:
                    os.pwrite(out, sec, base + o)
                continue
            os.pwrite(out, xts.decrypt((base + o) // ss, sec), base + o)
    if sparse:
        os.ftruncate(out, c.data_size)


def parse_args(argv):
    opts = {'keyfiles': [], 'slot': None, 'raw': False, 'view': False, 'pos': []}
    it = iter(argv)
    for a in it:
        if a == '--keyfile':
            opts['keyfiles'].append(next(it, None) or _usage('--keyfile needs a file'))
        elif a == '--slot':
            v = next(it, '')
            if not v.isdigit() or int(v) > 7:
                _usage('--slot needs 0-7')
            opts['slot'] = int(v)
        elif a == '--raw-secret':
            opts['raw'] = True
        elif a == '--reencrypt-view':
            opts['view'] = True
        elif a.startswith('-'):
            _usage(f'unknown option {a}')
        else:
            opts['pos'].append(a)
    if len(opts['pos']) != 2:
        _usage('expected CONTAINER OUTPUT')
    return opts


def _usage(msg):
    raise Failure('usage', f'{msg}\n{__doc__.split("usage: ")[1].split(chr(10) + chr(10))[0]}')


def read_secret(opts):
    data = sys.stdin.buffer.read()
    pw = data[:-1] if data.endswith(b'\n') else data
    if opts['raw']:
        try:
            p = bytes.fromhex(pw.decode('ascii').strip())
        except ValueError:
            raise Failure('usage', '--raw-secret expects hex on stdin')
        if len(p) != 32:
            raise Failure('usage', '--raw-secret expects 32 bytes')
        return [('raw', p)]
    # §14.2: recovery-key-shaped input goes, decoded, to the recovery slots; as typed it is still a
    # passphrase for the other slots (what vault does; QUESTIONS.md Q14).
    rk = None if opts['keyfiles'] else recovery_key(pw)
    return ([('recovery', rk)] if rk is not None else []) + [('passphrase', kdf_input(pw, opts['keyfiles']))]


def check_copies(where, paths):
    """--copy: §7 steps 1–6 on header copies alone (spec/vectors/copies); no place in a file. One line
    `<class or ok>\t<file>` per file on stdout; the exit code is that of the last failure, or 0."""
    if where not in ('primary', 'secondary'):
        _usage('--copy needs primary or secondary')
    rc = 0
    for path in paths:
        try:
            with open(path, 'rb') as fh:
                raw = fh.read(4096)
            c = parse_copy(raw, where, 0)
            sys.stdout.write(f'ok\t{path}\n')
            sys.stderr.write(f'spec-reader: ok: {path}: a valid {where} copy, uuid {c.uuid_text()}\n')
        except OSError as e:
            raise Failure('io-error', f'{path}: {e.strerror}')
        except Failure as f:
            sys.stdout.write(f'{f.cls}\t{path}\n')
            sys.stderr.write(f'spec-reader: {f.cls}: {path}: {f}\n')
            rc = FAILURES[f.cls]
    return rc


def main(argv):
    if argv[:1] == ['--copy']:
        return check_copies(argv[1] if len(argv) > 2 else _usage('--copy needs POSITION FILE...'), argv[2:])
    opts = parse_args(argv)
    self_test()
    container, output = opts['pos']
    try:
        fd = os.open(container, os.O_RDONLY)
    except OSError as e:
        raise Failure('io-error', f'{container}: {e.strerror}')
    size = os.lseek(fd, 0, os.SEEK_END)
    copies, failures = candidate_copies(fd, size)
    for f in failures:
        warn(f'invalid header copy: {f.cls}: {f}')
    check_uuids(copies)
    if copies[0].flags & FLAG_REENCRYPT and not opts['view']:
        raise Failure('unsupported-feature', 'a re-encryption is under way (REENCRYPT flag); finish it with '
                                             'vault reencrypt --resume, or read it with --reencrypt-view')
    if not any(c.active() for c in copies):  # §3: reported as such, before any secret is read
        raise Failure('no-keyslot', 'no valid header copy has an active keyslot; it can never be unlocked')
    secrets = read_secret(opts)
    c, slot, mk, kek, unlock_failures = unlock(copies, secrets, opts["slot"])
    for f in unlock_failures:
        warn(f'header copy not used: {f.cls}: {f}')
    if c is not copies[0]:
        warn(f'unlocked the {c.where} copy, which is not the newest valid copy')
    check_agreement(c, mk, copies)
    try:
        out = os.open(output, os.O_WRONLY | os.O_CREAT | (0 if output.startswith('/dev/') else os.O_TRUNC), 0o600)
    except OSError as e:
        raise Failure('io-error', f'{output}: {e.strerror}')
    try:
        if c.flags & FLAG_REENCRYPT:
            reencrypt_view(fd, out, c, mk, kek, slot)
        else:
            decrypt_area(fd, out, c, mk)
        os.fsync(out)
    finally:
        os.close(out)
    sys.stderr.write(f'spec-reader: uuid {c.uuid_text()}, {c.where} copy (sequence {c.sequence}), keyslot {slot}, '
                     f'sector_size {c.sector_size}, {c.data_size} bytes\n')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except Failure as f:
        sys.stderr.write(f'spec-reader: {f.cls}: {f}\n')
        sys.exit(FAILURES[f.cls])
