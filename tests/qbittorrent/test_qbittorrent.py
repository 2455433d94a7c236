#!/usr/bin/env python3
"""qbittorrent-nox patched with megatorrent, end to end on 127.0.0.1 only.

A local DHT testnet (`megatorrent dht node` processes) and `megatorrent publish` of a folder;
qbittorrent-nox instances with fresh profiles (their own DHT/LSD/PeX/UPnP off, listening on
127.0.0.1, WebUI on 127.0.0.1 without localhost authentication, megatorrent enabled with the
testnet as bootstrap). Three tests:
  api      the /api/v2/megatorrent/ endpoints and megatorrent_* preferences over HTTP,
           including their 400/404/409 answers;
  browser  headless Chromium drives the WebUI's Channels tab (subscribe, synced, files
           identical, new version, unsubscribe); screenshots go to the artifacts folder;
  sigterm  qbittorrent-nox exits cleanly on SIGTERM while a subscription is syncing.
Every process is started here and stopped by its PID; every wait is bounded.

Usage: test_qbittorrent.py --nox PATH --megatorrent PATH --artifacts DIR [TEST...]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HEX = set("0123456789abcdef")
# Bounds of the waits. The machine that runs CI has 2 cores shared with other jobs.
SYNC_TIMEOUT = 180
START_TIMEOUT = 60


class TestFailure(Exception):
    """A check that failed; wait_for() retries until its time is up."""


class Fatal(Exception):
    """A failure that no waiting can repair (a subscription in state failed): wait_for() stops."""


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=SYNC_TIMEOUT, interval=0.5):
    """Polls predicate() until it returns a true value (returned), or fails after timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Fatal:
            raise
        except Exception as e:  # a failed check, HTTP error, stale page element: try again
            last_error = e
        time.sleep(interval)
    raise TestFailure(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


class Process:
    """A child process whose stdout lines are collected by a thread; stopped by PID."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.lines = []
        self.cond = threading.Condition()
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, env=env)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, prefix, timeout=START_TIMEOUT, start=0):
        """Returns the first line (from index start) that starts with prefix."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if line.startswith(prefix):
                        return line
                if self.proc.poll() is not None and not self.thread.is_alive():
                    raise TestFailure(f"{self.name} exited ({self.proc.returncode}) before printing {prefix!r}; see {self.log_path}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TestFailure(f"{self.name} printed no {prefix!r} in {timeout} s; see {self.log_path}")
                self.cond.wait(min(remaining, 0.5))

    def terminate(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout; returns the exit code and whether it was killed."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        killed = False
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            killed = True
        self.thread.join(5)
        self.log.close()
        return self.proc.returncode, killed


def tree_files(root):
    """{relative path: bytes} of every file under root."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_folder(root, version, big=0):
    """A folder with nested files whose content depends on version; big: size of an extra file."""
    if root.exists():
        shutil.rmtree(root)
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "readme.txt").write_text(f"channel content, version {version}\n")
    (root / "docs" / "notes.md").write_text("# notes\n" + "line\n" * (100 * version))
    (root / "docs" / "deep" / "data.bin").write_bytes(os.urandom(300_000 + version))
    if big:
        (root / "big.bin").write_bytes(os.urandom(big))
    return root


class Testnet:
    """DHT nodes on 127.0.0.1 and the publishers' CLI processes."""

    def __init__(self, megatorrent, work):
        self.megatorrent = megatorrent
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes = []
        self.nodes = []
        for i in range(3):
            argv = [megatorrent, "dht", "node", "--listen", "127.0.0.1:0"]
            for node in self.nodes:
                argv += ["--bootstrap", node]
            p = self.start(f"dht-node-{i}", argv)
            self.nodes.append(p.wait_line("dht listening ").split()[-1])
        for node in self.nodes:
            check(node.startswith("127.0.0.1:"), f"a DHT node listens on {node}, not on loopback")

    def start(self, name, argv):
        p = Process(name, argv, self.logs)
        self.processes.append(p)
        return p

    def bootstrap_args(self):
        args = []
        for node in self.nodes:
            args += ["--bootstrap", node]
        return args

    def keygen(self, name):
        path = self.work / f"{name}.identity"
        out = subprocess.run([self.megatorrent, "keygen", "--out", str(path)], capture_output=True, text=True, timeout=60, check=True)
        key = out.stdout.strip().split()[-1]
        check(len(key) == 64 and set(key) <= HEX, f"keygen printed {out.stdout!r}")
        return path, key

    def publish(self, name, identity, folder):
        """Publishes folder and keeps serving it; returns (process, sequence)."""
        argv = [self.megatorrent, "publish", str(folder), "--identity", str(identity), "--blobs", str(self.work / f"{name}-blobs"),
                "--listen", "127.0.0.1:0"] + self.bootstrap_args()
        p = self.start(name, argv)
        line = p.wait_line("published seq ", timeout=SYNC_TIMEOUT)
        # "published seq N (K of M files unchanged)"
        return p, int(line.split()[2])

    def stop(self):
        for p in reversed(self.processes):
            if p.proc.poll() is None:
                p.terminate(10)


class Nox:
    """qbittorrent-nox with a fresh profile; the ini is written before its first start."""

    def __init__(self, binary, work, name, testnet, megatorrent_enabled=True):
        self.work = work / name
        self.profile = self.work / "profile"
        self.downloads = self.work / "downloads"
        config = self.profile / "qBittorrent" / "config"
        config.mkdir(parents=True)
        self.downloads.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        bootstrap = ", ".join(testnet.nodes)
        (config / "qBittorrent.conf").write_text(f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={free_port()}
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress=127.0.0.1
Session\\DefaultSavePath={self.downloads}
Megatorrent\\Enabled={'true' if megatorrent_enabled else 'false'}
Megatorrent\\BootstrapNodes={bootstrap}

[Network]
PortForwardingEnabled=false

[Preferences]
Connection\\ResolvePeerCountries=false
WebUI\\Address=127.0.0.1
WebUI\\Port={self.port}
WebUI\\LocalHostAuth=false
WebUI\\UseUPnP=false
""")
        self.process = Process(name, [binary, f"--profile={self.profile}"], testnet.logs)
        testnet.processes.append(self.process)
        wait_for(f"{name}'s WebUI", lambda: self.get("app/version"), timeout=START_TIMEOUT)

    def request(self, method, endpoint, params=None, expect=200):
        """(status, body) of /api/v2/<endpoint>; fails unless the status is expect."""
        url = f"{self.url}/api/v2/{endpoint}"
        data = None
        if method == "GET" and params:
            url += "?" + urllib.parse.urlencode(params)
        elif method == "POST":
            data = urllib.parse.urlencode(params or {}).encode()
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=150) as r:
                status, body = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        check(status == expect, f"{method} {endpoint} {params}: HTTP {status} {body!r}, expected {expect}")
        return body

    def get(self, endpoint, params=None, expect=200):
        body = self.request("GET", endpoint, params, expect)
        return json.loads(body) if expect == 200 and body.startswith(("{", "[")) else body

    def post(self, endpoint, params=None, expect=200):
        body = self.request("POST", endpoint, params, expect)
        return json.loads(body) if expect == 200 and body.startswith(("{", "[")) else body

    def subscription(self, public_key):
        for sub in self.get("megatorrent/subscriptions"):
            if sub["publicKey"] == public_key:
                return sub
        return None

    def wait_synced(self, public_key, sequence):
        def synced():
            sub = self.subscription(public_key)
            if sub is not None and sub["state"] == "failed":
                raise Fatal(f"subscription failed: {sub}")
            return sub if sub and sub["state"] == "synced" and sub["lastSequence"] == sequence else None
        return wait_for(f"channel {public_key[:16]} synced at sequence {sequence}", synced)

    def stop(self):
        return self.process.terminate(30)


def check_files_identical(save_path, folder):
    """The subscription's folder holds exactly the published folder's files (possibly under its name)."""
    got = tree_files(save_path)
    want = tree_files(folder)
    prefixed = {f"{folder.name}/{k}": v for k, v in want.items()}
    check(got == want or got == prefixed,
          f"files in {save_path} differ from {folder}: got {sorted(got)}, want {sorted(want)}")


def test_api(args, work, net):
    ident, key = net.keygen("api-channel")
    folder = make_folder(work / "api-folder", 1)
    publisher, seq = net.publish("api-publisher", ident, folder)
    nox = Nox(args.nox, work, "nox-api", net)
    try:
        # Preferences: the exact keys and types, applied without a restart
        prefs = nox.get("app/preferences")
        expected_types = {"megatorrent_enabled": bool, "megatorrent_listen_port": int, "megatorrent_dht_port": int,
                          "megatorrent_bootstrap_nodes": str, "megatorrent_save_path": str,
                          "megatorrent_dl_limit": int, "megatorrent_up_limit": int}
        for name, kind in expected_types.items():
            check(name in prefs and type(prefs[name]) is kind, f"preference {name}: {prefs.get(name)!r}")
        check(prefs["megatorrent_enabled"] is True, "megatorrent enabled by the ini")
        check(prefs["megatorrent_bootstrap_nodes"] == ",".join(net.nodes), f"bootstrap nodes {prefs['megatorrent_bootstrap_nodes']!r}")
        check(prefs["megatorrent_save_path"].rstrip("/") == str(nox.downloads / "Megatorrent"),
              f"default save path {prefs['megatorrent_save_path']!r}")
        status = nox.get("megatorrent/status")
        check(set(status) == {"enabled", "dhtPort", "listenPort", "dhtNodes", "blobs", "blobBytes", "subscriptions", "published"},
              f"status keys {sorted(status)}")
        check(status["enabled"] is True and status["dhtPort"] > 0, f"status {status}")

        dht_port = free_port()
        nox.post("app/setPreferences", {"json": json.dumps({"megatorrent_dht_port": dht_port, "megatorrent_dl_limit": 0,
                                                            "megatorrent_up_limit": 1 << 20})})
        prefs = nox.get("app/preferences")
        check(prefs["megatorrent_dht_port"] == dht_port and prefs["megatorrent_up_limit"] == 1 << 20, f"preferences not stored: {prefs}")
        wait_for("the session restarted on the new DHT port", lambda: nox.get("megatorrent/status")["dhtPort"] == dht_port, timeout=30)

        # Bad parameters: 400 with a one-line reason
        for endpoint, params in [("megatorrent/subscribe", {}), ("megatorrent/subscribe", {"channel": "nonsense"}),
                                 ("megatorrent/subscribe", {"channel": key[:-1]}),
                                 ("megatorrent/subscribe", {"channel": f"megatorrent://{key}:zz"}),
                                 ("megatorrent/subscribe", {"channel": key, "savePath": "relative/dir"}),
                                 ("megatorrent/unsubscribe", {"channel": "nonsense"}),
                                 ("megatorrent/unsubscribe", {"channel": key, "deleteFiles": "maybe"}),
                                 ("megatorrent/publish", {"publicKey": "xyz", "paths": str(folder)})]:
            reason = nox.post(endpoint, params, expect=400)
            check(reason.strip() and "\n" not in reason.strip(), f"{endpoint} {params}: reason {reason!r}")
        reason = nox.get("megatorrent/files", {"channel": "nonsense"}, expect=400)
        check(reason.strip(), "files: no reason")
        # Unknown channel: 404
        unknown = "ab" * 32
        nox.post("megatorrent/unsubscribe", {"channel": unknown}, expect=404)
        nox.get("megatorrent/files", {"channel": unknown}, expect=404)
        nox.post("megatorrent/publish", {"publicKey": unknown, "paths": str(folder)}, expect=404)
        # Methods as documented
        nox.request("GET", "megatorrent/subscribe", {"channel": key}, expect=405)

        # Subscribe ("publicKey" is a synonym of "channel"), sync, files identical
        reply = nox.post("megatorrent/subscribe", {"publicKey": key, "label": "api channel"})
        check(reply == {"publicKey": key}, f"subscribe replied {reply}")
        sub = nox.wait_synced(key, seq)
        check(set(sub) == {"publicKey", "salt", "label", "savePath", "lastSequence", "state", "bytesDone", "bytesTotal", "peers",
                           "dlspeed", "error"}, f"subscription keys {sorted(sub)}")
        check(sub["label"] == "api channel" and sub["bytesDone"] == sub["bytesTotal"] > 0, f"subscription {sub}")
        check(Path(sub["savePath"]).is_relative_to(nox.downloads / "Megatorrent"), f"save path {sub['savePath']}")
        check_files_identical(sub["savePath"], folder)
        files = nox.get("megatorrent/files", {"channel": key})
        check(len(files) == len(tree_files(folder)) and all(set(f) == {"path", "size", "progress"} and f["progress"] == 1 for f in files),
              f"files {files}")
        check(sum(f["size"] for f in files) == sum(len(v) for v in tree_files(folder).values()), f"file sizes {files}")
        # The same channel through a link form
        check(len(nox.get("megatorrent/files", {"channel": f"megatorrent://{key.upper()}"})) == len(files), "files by link")

        # Identities and publishing from qBittorrent
        reply = nox.post("megatorrent/generateKey")
        check(set(reply) == {"publicKey"} and len(reply["publicKey"]) == 64 and set(reply["publicKey"]) <= HEX, f"generateKey {reply}")
        own_key = reply["publicKey"]
        stored = list((nox.profile / "qBittorrent" / "data" / "megatorrent" / "identities").glob("*.identity"))
        check([p.name for p in stored] == [f"{own_key}.identity"], f"identities in the profile: {stored}")
        check(stat.S_IMODE(stored[0].stat().st_mode) == 0o600, "the identity file is not 0600")
        nox.post("megatorrent/publish", {"publicKey": own_key, "paths": "/nonexistent/megatorrent"}, expect=400)
        nox.post("megatorrent/publish", {"publicKey": own_key, "paths": ""}, expect=400)
        own_folder = make_folder(work / "api-own-folder", 7)
        reply = nox.post("megatorrent/publish", {"publicKey": own_key, "paths": f"\n{own_folder}\n", "title": "from qBittorrent"})
        check(set(reply) == {"publicKey", "sequence"} and reply["publicKey"] == own_key and reply["sequence"] > 0, f"publish {reply}")
        published = nox.get("megatorrent/published")
        mine = [p for p in published if p["publicKey"] == own_key]
        check(len(mine) == 1 and mine[0]["title"] == "from qBittorrent" and mine[0]["sequence"] == reply["sequence"]
              and mine[0]["files"] == len(tree_files(own_folder)) and mine[0]["bytes"] == sum(len(v) for v in tree_files(own_folder).values())
              and set(mine[0]) == {"publicKey", "salt", "title", "sequence", "files", "bytes"}, f"published {published}")
        # What qBittorrent published is on the testnet and it seeds it: the CLI downloads it
        fetched = work / "api-own-fetched"
        out = subprocess.run([args.megatorrent, "download", own_key, "--out", str(fetched), "--blobs", str(work / "api-own-fetched-blobs")]
                             + net.bootstrap_args(), capture_output=True, text=True, timeout=SYNC_TIMEOUT)
        check(out.returncode == 0, f"megatorrent download of qBittorrent's channel: {out.returncode} {out.stdout} {out.stderr}")
        check_files_identical(fetched, own_folder)

        # Disabled: 409, status says so; re-enabled on the same state folder: the subscription is back
        nox.post("app/setPreferences", {"json": json.dumps({"megatorrent_enabled": False})})
        check(nox.get("megatorrent/status")["enabled"] is False, "status after disabling")
        nox.get("megatorrent/subscriptions", expect=409)
        nox.post("megatorrent/subscribe", {"channel": key}, expect=409)
        nox.post("megatorrent/unsubscribe", {"channel": key}, expect=409)
        nox.get("megatorrent/files", {"channel": key}, expect=409)
        nox.post("megatorrent/generateKey", expect=409)
        nox.post("megatorrent/publish", {"publicKey": own_key, "paths": str(own_folder)}, expect=409)
        nox.get("megatorrent/published", expect=409)
        nox.post("app/setPreferences", {"json": json.dumps({"megatorrent_enabled": True})})
        wait_for("the subscription resumed", lambda: nox.subscription(key), timeout=60)

        # Unsubscribe, deleting the files
        check(nox.post("megatorrent/unsubscribe", {"channel": key, "deleteFiles": "true"}) == {}, "unsubscribe reply")
        wait_for("the subscription gone", lambda: nox.subscription(key) is None, timeout=30)
        wait_for("the files deleted", lambda: not any(Path(sub["savePath"]).rglob("*.bin")), timeout=30)
        nox.get("megatorrent/files", {"channel": key}, expect=404)

        log = nox.get("log/main")
        messages = [entry["message"] for entry in log]
        check(any("Megatorrent" in m and "synced" in m for m in messages), "no 'synced' entry in qBittorrent's log")
        code, killed = nox.stop()
        check(code == 0 and not killed, f"qbittorrent-nox exit code {code} (killed: {killed})")
    finally:
        if nox.process.proc.poll() is None:
            nox.stop()
        publisher.terminate(10)


def chromium_driver(artifacts):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
                 "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-', dir=artifacts)}",
                 # Nothing but 127.0.0.1 resolves: the browser cannot reach out even by accident
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def test_browser(args, work, net):
    from selenium.webdriver.common.by import By

    ident, key = net.keygen("browser-channel")
    folder = make_folder(work / "browser-folder", 1)
    publisher, seq = net.publish("browser-publisher", ident, folder)
    nox = Nox(args.nox, work, "nox-browser", net)
    artifacts = Path(args.artifacts)
    driver = chromium_driver(artifacts)
    driver.set_page_load_timeout(60)

    def shot(name):
        path = artifacts / f"channels-{name}.png"
        driver.save_screenshot(str(path))
        print(f"screenshot: {path}")

    def row():
        rows = driver.find_elements(By.CSS_SELECTOR, f"tr.channelRow[id^='channelRow_{key}']")
        return rows[0] if rows else None

    def row_state(state, sequence):
        r = row()
        if r is None:
            return None
        cell = r.find_element(By.CSS_SELECTOR, ".channelState")
        if cell.get_attribute("data-state") == "failed":
            raise Fatal(f"the row shows failed: {cell.get_attribute('title')}")
        return (cell.get_attribute("data-state") == state and r.find_element(By.CSS_SELECTOR, ".channelSequence").text == str(sequence))

    try:
        driver.get(nox.url + "/")
        tab = wait_for("the Channels tab", lambda: next((e for e in driver.find_elements(By.ID, "channelsTabLink") if e.is_displayed()), None), timeout=60)
        tab.click()
        field = wait_for("the subscribe field", lambda: next((e for e in driver.find_elements(By.ID, "channelsSubscribeInput") if e.is_displayed()), None), timeout=60)
        field.send_keys(f"megatorrent://{key}")
        driver.find_element(By.ID, "channelsLabelInput").send_keys("browser channel")
        driver.find_element(By.ID, "channelsSubscribeButton").click()
        wait_for("the row", row, timeout=30)
        shot("subscribed")
        wait_for(f"the row synced at sequence {seq}", lambda: row_state("synced", seq))
        r = row()
        check(r.find_element(By.CSS_SELECTOR, ".channelLabel").text == "browser channel", "label cell")
        check(r.find_element(By.CSS_SELECTOR, ".channelPeers").text.isdigit(), "peers cell")
        check("100.0%" in r.find_element(By.CSS_SELECTOR, ".channelProgress").text, "progress bar at 100%")
        sub = nox.subscription(key)
        check_files_identical(sub["savePath"], folder)
        r.find_element(By.CSS_SELECTOR, ".channelFilesButton").click()
        wait_for("the file list", lambda: len(driver.find_elements(By.CSS_SELECTOR, "tr.channelFileRow")) == len(tree_files(folder)), timeout=30)
        shot("synced")

        # The publisher publishes a new version: the row follows
        publisher.terminate(10)
        make_folder(folder, 2)
        publisher, seq2 = net.publish("browser-publisher-v2", ident, folder)
        check(seq2 > seq, f"new sequence {seq2} after {seq}")
        wait_for(f"the row synced at sequence {seq2}", lambda: row_state("synced", seq2))
        check_files_identical(nox.subscription(key)["savePath"], folder)
        shot("new-version")

        # Unsubscribe (keeping the files)
        row().find_element(By.CSS_SELECTOR, ".channelUnsubscribeButton").click()
        confirm = wait_for("the confirmation", lambda: next((e for e in driver.find_elements(By.ID, "channelsUnsubscribeConfirmButton") if e.is_displayed()), None), timeout=10)
        confirm.click()
        wait_for("the row gone", lambda: row() is None, timeout=30)
        shot("unsubscribed")
        check(nox.subscription(key) is None, "still subscribed after unsubscribing in the page")
        check_files_identical(sub["savePath"], folder)
    finally:
        driver.quit()
        nox.stop()
        publisher.terminate(10)


def test_sigterm(args, work, net):
    ident, key = net.keygen("sigterm-channel")
    folder = make_folder(work / "sigterm-folder", 1, big=16 << 20)
    publisher, _ = net.publish("sigterm-publisher", ident, folder)
    nox = Nox(args.nox, work, "nox-sigterm", net)
    try:
        # A slow download, so that it is still running when the signal comes
        nox.post("app/setPreferences", {"json": json.dumps({"megatorrent_dl_limit": 128 << 10})})
        nox.post("megatorrent/subscribe", {"channel": key})
        wait_for("the download started", lambda: (nox.subscription(key) or {}).get("bytesDone", 0) > 0, timeout=SYNC_TIMEOUT)
        sub = nox.subscription(key)
        check(sub["state"] in ("checking", "downloading") and sub["bytesDone"] < sub["bytesTotal"], f"not syncing any more: {sub}")
        started = time.monotonic()
        code, killed = nox.stop()
        elapsed = time.monotonic() - started
        check(not killed and code == 0, f"qbittorrent-nox exit code {code} after SIGTERM (killed: {killed})")
        print(f"sigterm: exited 0 in {elapsed:.1f} s with the subscription at {sub['bytesDone']}/{sub['bytesTotal']} bytes")
    finally:
        if nox.process.proc.poll() is None:
            nox.stop()
        publisher.terminate(10)


TESTS = {"api": test_api, "browser": test_browser, "sigterm": test_sigterm}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nox", required=True)
    parser.add_argument("--megatorrent", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("tests", nargs="*", default=list(TESTS))
    args = parser.parse_args()
    # Absolute: paths handed to qbittorrent-nox are resolved against its own working folder.
    args.artifacts = str(Path(args.artifacts).resolve())
    Path(args.artifacts).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="qbt-test-", dir=args.artifacts))
    failed = []
    for name in args.tests:
        net = Testnet(args.megatorrent, work / name)
        started = time.monotonic()
        try:
            TESTS[name](args, work / name, net)
            print(f"ok {name} ({time.monotonic() - started:.0f} s)")
        except Exception as e:  # every failure is reported, then the next test runs
            print(f"FAILED {name}: {type(e).__name__}: {e}")
            failed.append(name)
        finally:
            net.stop()
    if failed:
        print(f"failed: {', '.join(failed)}; logs under {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
