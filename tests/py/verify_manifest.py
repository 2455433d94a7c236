#!/usr/bin/env python3
"""Independent manifest verifier (PROTOCOL.md 2.3), sharing no code with the Rust crate.

Usage: verify_manifest.py FILE [--sorted] [--reference-order] [--canonical] [--strings]

Re-serializes the manifest without its "signature" key as
json.dumps(obj, separators=(",", ":"), ensure_ascii=False) does (which escapes strings as
JavaScript's JSON.stringify does), keys in received order (what the older reference checks) or,
with --sorted, with sort_keys=True (what the newest reference checks), and checks the Ed25519
signature by "publicKey" over it.
--reference-order also requires the key order of PROTOCOL.md 2.1 at every level.
--canonical also requires the text itself to be that form with keys sorted at every level
(signature included), as our creators emit it.
--strings prints, after "valid", the collection titles and file names as one ASCII JSON array.
Prints "valid" and exits 0, or prints the reason and exits 1.
Works with python3-cryptography 38 (Debian 12) and newer.
"""
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PLAIN = ["publicKey", "sequence", "collections", "timestamp", "signature"]
PRIVATE = ["publicKey", "sequence", "encrypted", "nonce", "ciphertext", "signature"]
COLLECTION = ["title", "items"]
ENTRY = ["name", "size", "chunks"]
CHUNK = ["blobId", "offset", "length", "key", "nonce", "realSize"]


def no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key " + key)
        obj[key] = value
    return obj


def check_order(obj):
    def expect(o, keys, where):
        if list(o.keys()) != keys:
            raise ValueError("%s keys %s, expected %s" % (where, list(o.keys()), keys))

    expect(obj, PRIVATE if obj.get("encrypted") is True else PLAIN, "manifest")
    for c in obj.get("collections", []):
        expect(c, COLLECTION, "collection")
        for e in c["items"]:
            expect(e, ENTRY, "entry")
            for ch in e["chunks"]:
                expect(ch, CHUNK, "chunk")


def main(argv):
    path = argv[1]
    sort_keys = "--sorted" in argv
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    obj = json.loads(text, object_pairs_hook=no_duplicates)
    if "--reference-order" in argv:
        check_order(obj)
    if "--canonical" in argv:
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if text.strip() != canonical:
            raise ValueError("text is not sorted compact JSON")
    signature = bytes.fromhex(obj.pop("signature"))
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(obj["publicKey"]))
    message = json.dumps(
        obj, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    public_key.verify(signature, message)
    print("valid")
    if "--strings" in argv:
        strings = []
        for c in obj.get("collections", []):
            strings.append(c["title"])
            strings.extend(e["name"] for e in c["items"])
        print(json.dumps(strings, ensure_ascii=True))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (InvalidSignature, ValueError, KeyError, TypeError) as e:
        print("invalid: %s" % (type(e).__name__ + (": " + str(e) if str(e) else "")))
        sys.exit(1)
