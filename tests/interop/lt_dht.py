#!/usr/bin/python3
"""A small libtorrent DHT network on loopback, driven line by line over stdin/stdout.

Run with Debian's /usr/bin/python3 (python3-libtorrent). Starts N libtorrent sessions on
127.0.0.1 with the loopback settings of PROTOCOL.md 4.1, bootstrapped on each other, prints
one JSON line {"nodes": ["127.0.0.1:PORT", ...]} and then answers commands, one JSON line each:

  put NODE SEED_HEX VALUE_HEX SALT_HEX|- PUBKEY_HEX   libtorrent signs and puts a mutable item
  get NODE PUBKEY_HEX SALT_HEX           most recent mutable item, or {"found": false}
  announce NODE INFOHASH_HEX             BEP 5 announce_peer of the node's listen port
  peers NODE INFOHASH_HEX                get_peers: {"peers": ["ip:port", ...]}
  quit

Exits 3 with a message when `import libtorrent` fails, so the caller can skip clearly.
Only the standard library besides libtorrent (hashlib for libtorrent's key format).
"""
import hashlib
import json
import sys
import tempfile
import time

try:
    import libtorrent as lt
except ImportError as e:  # pragma: no cover - depends on the machine
    print(json.dumps({"skip": "import libtorrent failed: %s" % e}), flush=True)
    sys.exit(3)

TIMEOUT = 20.0


def expanded_secret(seed):
    """libtorrent's (orlp ed25519) 64-byte secret key for a 32-byte seed."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


def as_bytes(v):
    """The bindings give byte strings as str (latin-1) or bytes depending on the version."""
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode("latin-1")
    return bytes(v)


def make_session():
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "alert_mask": lt.alert.category_t.dht_notification
        | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification,
    }
    return lt.session(settings)


def wait_for(ses, predicate, timeout=TIMEOUT):
    """Pop alerts until predicate(alert) returns a value that is not None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            r = predicate(a)
            if r is not None:
                return r
    return None


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    sessions = [make_session() for _ in range(n)]
    ports = []
    for s in sessions:
        deadline = time.time() + TIMEOUT
        while s.listen_port() == 0 and time.time() < deadline:
            time.sleep(0.05)
        ports.append(s.listen_port())
    for i, s in enumerate(sessions):
        for j, p in enumerate(ports):
            if i != j:
                s.add_dht_node(("127.0.0.1", p))
    # Let the nodes find each other.
    time.sleep(2.0)
    print(json.dumps({"nodes": ["127.0.0.1:%d" % p for p in ports]}), flush=True)

    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd, args = parts[0], parts[1:]
        if cmd == "quit":
            break
        ses = sessions[int(args[0])]
        ses.pop_alerts()
        if cmd == "put":
            seed = bytes.fromhex(args[1])
            value = bytes.fromhex(args[2])
            salt = b"" if args[3] == "-" else bytes.fromhex(args[3])
            pk = bytes.fromhex(args[4])
            ses.dht_put_mutable_item(expanded_secret(seed), pk, value, salt)

            def on_put(a):
                if isinstance(a, lt.dht_put_alert):
                    return {"seq": a.seq, "num_success": a.num_success}
                return None

            r = wait_for(ses, on_put)
            print(json.dumps(r or {"error": "no dht_put_alert"}), flush=True)
        elif cmd == "get":
            pk = bytes.fromhex(args[1])
            salt = bytes.fromhex(args[2]) if len(args) > 2 else b""
            ses.dht_get_mutable_item(pk, salt)

            def on_item(a):
                if isinstance(a, lt.dht_mutable_item_alert) and as_bytes(a.salt) == salt:
                    # The binding gives the whole item as a dict; older ones gave the value.
                    try:
                        item = a.item
                    except RuntimeError:  # nothing found: the entry is undefined
                        return {"found": False}
                    if isinstance(item, dict):
                        seq, value, sig = item.get("seq", 0), item.get("value"), item.get("signature")
                    else:
                        seq, value, sig = a.seq, item, a.signature
                    if isinstance(value, str):
                        value = value.encode("latin-1")
                    if isinstance(sig, str):
                        sig = sig.encode("latin-1")
                    return {
                        "found": value is not None and seq > 0,
                        "seq": seq,
                        "value_hex": (value or b"").hex(),
                        "signature": bytes(sig or b"").hex(),
                    }
                return None

            r = wait_for(ses, on_item)
            print(json.dumps(r or {"found": False}), flush=True)
        elif cmd == "announce":
            # The binding does not expose dht_announce's flag type, so announce the way a
            # client does: add a torrent by info hash; libtorrent announces its listen port.
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(args[1])))
            atp.save_path = tempfile.mkdtemp(prefix="lt-dht-")
            atp.flags &= ~lt.torrent_flags.auto_managed
            atp.flags &= ~lt.torrent_flags.paused
            handle = ses.add_torrent(atp)
            handle.force_dht_announce()
            print(json.dumps({"port": ses.listen_port()}), flush=True)
        elif cmd == "peers":
            ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(args[1])))
            found = set()
            deadline = time.time() + 5.0
            while time.time() < deadline:
                ses.wait_for_alert(100)
                done = False
                for a in ses.pop_alerts():
                    if isinstance(a, lt.dht_get_peers_reply_alert):
                        for ip, port in a.peers():
                            found.add("%s:%d" % (ip, port))
                        done = True
                if done and found:
                    break
            print(json.dumps({"peers": sorted(found)}), flush=True)
        else:
            print(json.dumps({"error": "unknown command %s" % cmd}), flush=True)


if __name__ == "__main__":
    main()
