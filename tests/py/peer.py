#!/usr/bin/env python3
"""An independent Megatorrent v5 peer for interoperability tests (PROTOCOL.md section 5).

It shares no code with the Rust crate: X25519 and ChaCha20-Poly1305 come from the
`cryptography` package, BLAKE2b-256 and SHA-256 from hashlib. Only long-stable APIs are used,
so it runs with cryptography 38 (Debian) as well as current releases.

  peer.py serve --blobs DIR                 prints "listening HOST:PORT", serves until killed
  peer.py fetch HOST:PORT ID... --out DIR   fetches (pipelined) and verifies; exit 0 if all ok
"""
import argparse
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HELLO, REQUEST, DATA, FIND_PEERS, PEERS, PUBLISH, ANNOUNCE, OK, ERROR = (
    1, 2, 3, 4, 5, 6, 7, 8, 0xFF)
MAX_FRAME = 1049600
ID_RE = re.compile(r"^[0-9a-f]{64}$")


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class Channel:
    def __init__(self, sock, is_client):
        self.sock = sock
        secret = X25519PrivateKey.generate()
        public = secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        sock.sendall(public)  # both sides send first, neither waits
        peer = recv_exact(sock, 32)
        if peer is None:
            raise ConnectionError("peer closed during the handshake")
        shared = secret.exchange(X25519PublicKey.from_public_bytes(peer))
        if shared == bytes(32):
            raise ConnectionError("non-contributory shared secret")
        c2s = hashlib.blake2b(shared + b"C", digest_size=32).digest()
        s2c = hashlib.blake2b(shared + b"S", digest_size=32).digest()
        self.tx = ChaCha20Poly1305(c2s if is_client else s2c)
        self.rx = ChaCha20Poly1305(s2c if is_client else c2s)
        self.tx_n = 0
        self.rx_n = 0

    @staticmethod
    def nonce(n):
        return n.to_bytes(12, "little")

    def send(self, msg_type, payload):
        ct = self.tx.encrypt(self.nonce(self.tx_n), bytes([msg_type]) + payload, None)
        self.tx_n += 1
        self.sock.sendall(struct.pack(">I", len(ct)) + ct)

    def recv(self):
        head = recv_exact(self.sock, 4)
        if head is None:
            return None
        (length,) = struct.unpack(">I", head)
        if length < 17 or length > MAX_FRAME:
            raise ConnectionError("bad frame length %d" % length)
        ct = recv_exact(self.sock, length)
        if ct is None:
            raise ConnectionError("truncated frame")
        pt = self.rx.decrypt(self.nonce(self.rx_n), ct, None)
        self.rx_n += 1
        return pt[0], pt[1:]

    def close(self):
        # FIN, then drain: never reset a peer that may still write.
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(5)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.sock.close()


def serve_one(conn, blobs):
    try:
        ch = Channel(conn, is_client=False)
        while True:
            frame = ch.recv()
            if frame is None:
                break
            msg_type, payload = frame
            if msg_type == HELLO:
                json.loads(payload.decode())
            elif msg_type == REQUEST:
                name = payload.decode("ascii", "replace")
                path = os.path.join(blobs, name)
                if ID_RE.match(name) and os.path.isfile(path):
                    with open(path, "rb") as f:
                        ch.send(DATA, f.read())
                else:
                    ch.send(ERROR, b"Not Found")
            elif msg_type == FIND_PEERS:
                ch.send(PEERS, b"[]")
            else:
                ch.send(ERROR, b"Unsupported")
        ch.close()
    except Exception as e:  # one bad connection must not stop the server
        print("connection error: %r" % e, file=sys.stderr)
        conn.close()


def serve(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    host, port = srv.getsockname()
    print("listening %s:%d" % (host, port), flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_one, args=(conn, args.blobs), daemon=True).start()


def fetch(args):
    host, port = args.peer.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ch = Channel(sock, is_client=True)
    ch.send(HELLO, json.dumps({"v": 5, "gossip": {}}, separators=(",", ":")).encode())
    for blob_id in args.ids:  # pipelined: every request before any reply
        ch.send(REQUEST, blob_id.encode())
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for blob_id in args.ids:
        frame = ch.recv()
        if frame is None:
            print("%s: connection closed" % blob_id, file=sys.stderr)
            return 1
        msg_type, payload = frame
        if msg_type == DATA and hashlib.sha256(payload).hexdigest() == blob_id:
            with open(os.path.join(args.out, blob_id), "wb") as f:
                f.write(payload)
        else:
            failed += 1
            print("%s: type %d %r" % (blob_id, msg_type, payload[:80]), file=sys.stderr)
    ch.close()
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--blobs", required=True)
    f = sub.add_parser("fetch")
    f.add_argument("peer")
    f.add_argument("ids", nargs="+")
    f.add_argument("--out", required=True)
    args = p.parse_args()
    if args.cmd == "serve":
        serve(args)
        return 0
    return fetch(args)


if __name__ == "__main__":
    sys.exit(main())
