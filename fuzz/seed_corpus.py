#!/usr/bin/env python3
"""Write the seed corpora (fuzz/corpus/<target>/) from the protocol test vectors.

Run from anywhere: `python3 fuzz/seed_corpus.py`. Standard library only. Each seed is named by
the SHA-1 of its bytes, as libFuzzer names corpus files, so re-running adds nothing twice.
"""
import hashlib
import json
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "tests", "vectors")
CORPUS = os.path.join(HERE, "corpus")


def vec(*path):
    with open(os.path.join(VECTORS, *path), "rb") as f:
        return f.read()


def put(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


SIG = re.compile(rb',"signature":"[0-9a-f]*"')

index = json.loads(vec("manifests", "index.json"))
for case in index["cases"]:
    text = vec("manifests", case["file"])
    put("manifest_verify", b"\x00" + text)
    put("dht_record", text.strip())
    unsigned = SIG.sub(b"", text.strip())
    if unsigned != text.strip():
        put("manifest_verify", b"\x01" + unsigned)
    if case["file"].startswith("private"):
        put("manifest_decrypt", b"\x00" + text)

# Plaintexts of private manifests: {"collections":..,"timestamp":..}.
for name in ["private-small.decrypted.json", "plain-small.json", "plain-three.json"]:
    obj = json.loads(vec("manifests", name))
    inner = {k: v for k, v in obj.items() if k in ("collections", "timestamp")}
    put("manifest_decrypt", b"\x01" + compact(inner))

# A pointer record for the three-chunk manifest (PROTOCOL.md 4).
three = vec("manifests", "plain-three.json").strip()
head = json.loads(three)
put("dht_record", compact({
    "publicKey": head["publicKey"],
    "sequence": head["sequence"],
    "manifestParts": [hashlib.sha256(three).hexdigest()],
    "size": len(three),
}))

t = json.loads(vec("transport.json"))
client = b"".join(bytes.fromhex(f["frame_hex"]) for f in t["client_frames"])
server = b"".join(bytes.fromhex(f["frame_hex"]) for f in t["server_frames"])
for piece in (1, 5, 255):
    put("frame_decoder", bytes([piece]) + client)
    put("frame_decoder", bytes([piece]) + server)
# Channel raw mode (bit 1 clear): bit 0 = 1 is the server, which receives the client's key and
# frames; bit 0 = 0 the client. The upper bits pick the piece size.
for piece_index in (0, 4, 13):
    put("channel", bytes([piece_index << 2 | 1]) + bytes.fromhex(t["client_eph_pk"]) + client)
    put("channel", bytes([piece_index << 2]) + bytes.fromhex(t["server_eph_pk"]) + server)
# Sealed mode (bit 1 set): the bytes drive the messages the peer seals.
put("channel", b"\x02\x03\x01\x10" + b"A" * 64 + b"\x05\x20" + b"B" * 40)
put("channel", b"\x03\x08" + bytes(range(256)))

payloads = {f["type"]: bytes.fromhex(f["payload_hex"]) for f in t["client_frames"] + t["server_frames"]}
put("msg_hello", payloads[1])
pk = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
put("msg_hello", compact({"v": 5, "gossip": {"sequences": {pk: 1700000000001}}}))
put("msg_hello", compact({"v": 5, "bind": 1}))
put("msg_hello", compact({"v": 5, "id": pk, "sig": "ab" * 64}))
put("msg_hello", b"{}")
put("msg_hello", compact({"v": "5", "x": [1]}))
put("msg_dht", b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
put("msg_dht", b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re")
put("msg_dht", b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe")
put("msg_peers", payloads[5])
put("msg_peers", compact(["127.0.0.1:6881", "[::1]:80", "example.org:1234"]))

blob_id = json.loads(vec("blobs", "small.entry.json"))
blob_id = blob_id.get("blobId") or blob_id["chunks"][0]["blobId"]
put("msg_announce", compact({"blobId": blob_id, "peerAddress": "127.0.0.1:6881"}))
put("msg_announce", compact({"blobId": blob_id, "peerAddress": "[::1]:443"}))

b = json.loads(vec("bep44.json"))
for c in b["computed"]:
    item = {"k": c["publicKey"], "seq": c["seq"], "v": c["value_hex"], "sig": c["signature"]}
    if c["salt_hex"]:
        item["salt"] = c["salt_hex"]
    put("msg_publish", compact(item))
    salt = bytes.fromhex(c["salt_hex"])
    put("bep44_signed_data", struct.pack(">q", c["seq"]) + bytes([len(salt)]) + salt
        + bytes.fromhex(c["value_hex"]))
for c in b["from_spec"]:
    if "seq" not in c:
        continue
    salt = bytes.fromhex(c["salt_hex"])
    value = c["value_bencoded"].split(":", 1)[1].encode()
    put("bep44_signed_data", struct.pack(">q", c["seq"]) + bytes([len(salt)]) + salt + value)
