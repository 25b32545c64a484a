#!/usr/bin/env python3
"""A software FIDO2 authenticator for vault's tests: CTAP HID framing (CTAP 2.1 §11.2) over a unix
stream socket, one 64-byte report per read and write, the transport native/fido2.c plugs into the real
libfido2 for "unix:<path>" devices. The CTAP2 commands are in ctap2.py. Only the device is simulated.

  authenticator.py --socket PATH [--master HEX32] [--pin PIN] [--uv] [--ctap21]
                   [--presence ok|deny|timeout|slow] [--presence-ms N] [--log FILE] [--up-always] [--always-uv]

--master: the secret that wraps credential ids (another value = another authenticator).
--presence: what the simulated user does when the key asks for a touch: touches it (ok), refuses
(deny: CTAP2_ERR_OPERATION_DENIED), never touches it (timeout: keepalives for --presence-ms, then
CTAP2_ERR_USER_ACTION_TIMEOUT), or touches it after --presence-ms (slow).
--up-always: getAssertion without user presence is refused with CTAP2_ERR_UP_REQUIRED (as some keys do).
--always-uv: CTAP 2.1 alwaysUv: getAssertion without the PIN (or built-in UV) is refused with CTAP2_ERR_PUAT_REQUIRED.
--log: appends one line per CTAP2 command (which command, clientPIN subcommand, PIN protocol; no secrets).
Prints "ready" on stdout once it listens. Secrets given on this command line are test fixtures."""
import argparse
import os
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctap2  # noqa: E402

REPORT = 64
BROADCAST = 0xFFFFFFFF
CMD_PING, CMD_MSG, CMD_INIT, CMD_WINK, CMD_CBOR, CMD_CANCEL, CMD_KEEPALIVE, CMD_ERROR = 0x01, 0x03, 0x06, 0x08, 0x10, 0x11, 0x3B, 0x3F
ERR_INVALID_CMD, ERR_INVALID_PAR, ERR_INVALID_LEN, ERR_INVALID_SEQ, ERR_CHANNEL_BUSY, ERR_INVALID_CHANNEL = 0x01, 0x02, 0x03, 0x04, 0x06, 0x0B
STATUS_UPNEEDED = 0x02
CAPABILITIES = 0x04 | 0x08  # CAPFLAG_CBOR | CAPFLAG_NMSG: CTAP2 only, no U2F messages
MAX_MESSAGE = REPORT - 7 + 128 * (REPORT - 5)  # 7609 bytes


class Closed(Exception):
    pass


class HidConnection:
    """One platform connection: reassembles CTAP HID messages and answers them."""

    def __init__(self, sock: socket.socket, server: 'Server'):
        self.sock, self.server = sock, server

    def read_report(self) -> bytes:
        buf = b''
        while len(buf) < REPORT:
            chunk = self.sock.recv(REPORT - len(buf))
            if not chunk:
                raise Closed()
            buf += chunk
        return buf

    def send(self, cid: int, cmd: int, data: bytes):
        """Frames `data` as one init packet and continuation packets (§11.2.4)."""
        first = struct.pack('>IBH', cid, 0x80 | cmd, len(data)) + data[:REPORT - 7]
        packets, rest, seq = [first], data[REPORT - 7:], 0
        while rest:
            packets.append(struct.pack('>IB', cid, seq) + rest[:REPORT - 5])
            rest, seq = rest[REPORT - 5:], seq + 1
        for p in packets:
            self.sock.sendall(p.ljust(REPORT, b'\x00'))

    def error(self, cid: int, code: int):
        self.send(cid, CMD_ERROR, bytes([code]))

    def read_message(self):
        """(cid, cmd, payload) of the next whole request, answering framing errors on the way."""
        while True:
            pkt = self.read_report()
            cid, b = struct.unpack('>IB', pkt[:5])
            if not b & 0x80:
                continue  # a stray continuation packet: ignored (§11.2.5.2)
            cmd, length = b & 0x7F, struct.unpack('>H', pkt[5:7])[0]
            if length > MAX_MESSAGE:
                self.error(cid, ERR_INVALID_LEN)
                continue
            data, seq, ok = pkt[7:7 + length], 0, True
            while len(data) < length:
                cont = self.read_report()
                ccid, cseq = struct.unpack('>IB', cont[:5])
                if ccid != cid:
                    self.error(ccid, ERR_CHANNEL_BUSY)
                    continue
                if cseq != seq:
                    self.error(cid, ERR_INVALID_SEQ)
                    ok = False
                    break
                data += cont[5:5 + length - len(data)]
                seq += 1
            if ok:
                return cid, cmd, data

    def wait_for_presence(self, cid: int) -> int:
        """The simulated user's answer to "touch the key", with keepalives while it waits (§11.2.9.1.5);
        a CTAPHID_CANCEL on the channel ends the wait (CTAP2_ERR_KEEPALIVE_CANCEL)."""
        mode, deadline = self.server.presence, time.monotonic() + self.server.presence_ms / 1000
        self.send(cid, CMD_KEEPALIVE, bytes([STATUS_UPNEEDED]))
        if mode == 'ok':
            return ctap2.OK
        if mode == 'deny':
            return ctap2.OPERATION_DENIED
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.sock], [], [], 0.1)
            if readable:
                pkt = self.read_report()
                pcid, b = struct.unpack('>IB', pkt[:5])
                if pcid == cid and b == 0x80 | CMD_CANCEL:
                    return 0x2D
                if pcid != cid and b & 0x80:
                    self.error(pcid, ERR_CHANNEL_BUSY)
            self.send(cid, CMD_KEEPALIVE, bytes([STATUS_UPNEEDED]))
        return ctap2.OK if mode == 'slow' else ctap2.USER_ACTION_TIMEOUT

    def serve(self):
        while True:
            cid, cmd, data = self.read_message()
            if cmd == CMD_INIT:
                if len(data) != 8:
                    self.error(cid, ERR_INVALID_LEN)
                    continue
                new_cid = self.server.allocate_cid() if cid == BROADCAST else cid
                self.send(cid, CMD_INIT, data + struct.pack('>IBBBBB', new_cid, 2, 1, 0, 0, CAPABILITIES))
            elif cid == BROADCAST or cid == 0:
                self.error(cid, ERR_INVALID_CHANNEL)
            elif cmd == CMD_PING:
                self.send(cid, CMD_PING, data)
            elif cmd == CMD_WINK:
                self.send(cid, CMD_WINK, b'')
            elif cmd == CMD_CANCEL:
                pass  # nothing in progress: no answer (§11.2.9.1.5)
            elif cmd == CMD_CBOR:
                self.server.auth.presence = lambda: self.wait_for_presence(cid)
                self.send(cid, CMD_CBOR, self.server.auth.handle(data))
            else:
                self.error(cid, ERR_INVALID_CMD)


class Server:
    def __init__(self, args):
        self.presence, self.presence_ms = args.presence, args.presence_ms
        master = bytes.fromhex(args.master) if args.master else os.urandom(32)
        log = (lambda line: None)
        if args.log:
            log_file = open(args.log, 'a', buffering=1)
            log = (lambda line: log_file.write(line + '\n'))
        self.auth = ctap2.Authenticator(master, args.pin, args.uv, args.ctap21, lambda: ctap2.OK, log, args.up_always, args.always_uv)
        self.next_cid = 1

    def allocate_cid(self) -> int:
        cid, self.next_cid = self.next_cid, self.next_cid % 0xFFFFFFFE + 1
        return cid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--socket', required=True)
    ap.add_argument('--master')
    ap.add_argument('--pin')
    ap.add_argument('--uv', action='store_true')
    ap.add_argument('--ctap21', action='store_true')
    ap.add_argument('--always-uv', action='store_true')
    ap.add_argument('--presence', choices=['ok', 'deny', 'timeout', 'slow'], default='ok')
    ap.add_argument('--presence-ms', type=int, default=1000)
    ap.add_argument('--log')
    ap.add_argument('--up-always', action='store_true')
    args = ap.parse_args()
    server = Server(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(args.socket)
        listener.listen(4)
        print('ready', flush=True)
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    HidConnection(conn, server).serve()
                except (Closed, ConnectionError):
                    pass
    finally:
        listener.close()
        try:
            os.unlink(args.socket)
        except FileNotFoundError:
            pass


if __name__ == '__main__':
    main()
