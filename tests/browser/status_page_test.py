#!/usr/bin/python3
"""The status page in a real headless browser (Debian's chromium driven by
python3-selenium, both installed by deploy/install-deps.sh).

Starts syncmesh-node processes (ports from the OS, read from each node's
startup line), loads node 0's page, writes a key on node 2 over HTTP and
waits (poll with a deadline) until the page's event list and key browser
show it; checks the mesh graph draws the 3 nodes and saves a screenshot
under the build folder. A second case starts a node with a token file: the
page asks for the token and works once it is entered.

Run by ctest (label `browser`); exit code 77 (skipped) when chromium,
chromedriver or selenium are missing, with the reason.
"""

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError as e:  # pragma: no cover - environment check
    print(f"SKIP: python3-selenium is missing ({e}); run deploy/install-deps.sh")
    sys.exit(SKIP)

READY = re.compile(r"syncmesh-node ready node=(\S+) listen=(\S+):(\d+) http=(\S+):(\d+)")


def wait_for(what, check, timeout=30.0, interval=0.1):
    """Polls `check` until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # a page mid-update may throw; try again
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Node:
    """One syncmesh-node process; its ports come from its startup line."""

    def __init__(self, binary, workdir, name, extra=()):
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "w")
        args = [binary, "--port=0", "--http=127.0.0.1:0", "--host=127.0.0.1", *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self._ready_line(30.0)
        m = READY.search(line)
        if not m:
            raise AssertionError(f"{name}: unexpected startup line {line!r}")
        self.id = m.group(1)
        self.peer_port = int(m.group(3))
        self.http_port = int(m.group(5))
        self.url = f"http://127.0.0.1:{self.http_port}"

    def _ready_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    break
                buf += line
                if "syncmesh-node ready" in line:
                    return line
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"node did not start: {buf!r}, see {self.log_path}")

    def call(self, method, path, body=None, token=None, content_type="text/plain"):
        req = urllib.request.Request(self.url + path, method=method, data=body)
        if body is not None:
            req.add_header("Content-Type", content_type)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=10) as res:
            data = res.read()
            return res.status, (json.loads(data) if data and
                                res.headers.get_content_type() == "application/json" else data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(chromium) or not os.path.exists(driver):
        print("SKIP: chromium or chromedriver is missing; run deploy/install-deps.sh")
        sys.exit(SKIP)
    opts = Options()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def console_problems(drv):
    """Severe console entries (script errors, CSP violations)."""
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def event_texts(drv):
    return [li.text for li in drv.find_elements(By.CSS_SELECTOR, "#events li")]


def test_cluster(binary, workdir, artifacts):
    nodes = []
    drv = None
    try:
        nodes.append(Node(binary, workdir, "node0"))
        seed = f"--peers=127.0.0.1:{nodes[0].peer_port}"
        nodes.append(Node(binary, workdir, "node1", [seed]))
        nodes.append(Node(binary, workdir, "node2", [seed]))
        n0 = nodes[0]
        wait_for("node 0 to have 2 peers", lambda: len(n0.call("GET", "/v1/peers")[1]["peers"]) == 2)

        drv = browser()
        drv.get(n0.url + "/")
        wait_for("the page to show node 0's ID",
                 lambda: drv.find_element(By.ID, "node-id").text == n0.id)
        wait_for("the watch stream to be live",
                 lambda: drv.find_element(By.ID, "watch-state").text == "live")

        key = "page-test/written-on-node-2"
        status, _ = nodes[2].call("PUT", "/v1/kv/" + key, b"hello from node 2")
        assert status in (200, 204), status

        wait_for("the event list to show the write",
                 lambda: any(key in t and "hello from node 2" in t for t in event_texts(drv)))
        row = wait_for("the key browser to show the key",
                       lambda: [r for r in drv.find_elements(By.CSS_SELECTOR, "#keys tbody tr")
                                if r.get_attribute("data-key") == key])
        cells = row[0].find_elements(By.TAG_NAME, "td")
        assert "hello from node 2" in cells[1].text, cells[1].text
        assert nodes[2].id.startswith(cells[2].text), (cells[2].text, nodes[2].id)

        circles = wait_for("the mesh graph to draw 3 nodes",
                           lambda: (lambda c: c if len(c) == 3 else None)(
                               drv.find_elements(By.CSS_SELECTOR, "#mesh circle.node")))
        assert len(circles) == 3
        assert len(drv.find_elements(By.CSS_SELECTOR, "#mesh circle.node.self")) == 1
        # Node 1 and node 2 linked to each other; node 0 hears of it through
        # peer exchange and draws it dashed beside its own two links.
        wait_for("the mesh graph to draw node 1 - node 2 as announced",
                 lambda: len(drv.find_elements(By.CSS_SELECTOR, "#mesh line.link.announced")) >= 1
                 and len(drv.find_elements(By.CSS_SELECTOR, "#mesh line.link:not(.announced)")) == 2)
        # The chart draws once two samples arrived (1 s apart).
        wait_for("the chart to draw its series",
                 lambda: len(drv.find_elements(By.CSS_SELECTOR, "#chart polyline")) == 3,
                 timeout=20)
        # A search narrows the key browser to the prefix.
        nodes[0].call("PUT", "/v1/kv/other-key", b"x")
        box = drv.find_element(By.ID, "key-prefix")
        box.clear()
        box.send_keys("page-test/\n")
        wait_for("the prefix search", lambda: [r.get_attribute("data-key") for r in
                                              drv.find_elements(By.CSS_SELECTOR, "#keys tbody tr")]
                 == [key])

        os.makedirs(artifacts, exist_ok=True)
        shot = os.path.join(artifacts, "status_page.png")
        assert drv.save_screenshot(shot), "screenshot failed"
        assert os.path.getsize(shot) > 10_000, "screenshot is suspiciously small"
        problems = console_problems(drv)
        assert not problems, f"browser console errors: {problems}"
        print(f"cluster: ok, screenshot {shot}")
    finally:
        if drv:
            drv.quit()
        for n in nodes:
            n.stop()


def test_token(binary, workdir, artifacts):
    token = "page-test-token-0123456789abcdef"
    token_file = os.path.join(workdir, "tokens")
    with open(token_file, "w") as f:
        f.write(f"admin {token} page-test\n")
    os.chmod(token_file, 0o600)
    node = None
    drv = None
    try:
        node = Node(binary, workdir, "token-node", [f"--http-token-file={token_file}"])
        drv = browser()
        drv.get(node.url + "/")
        form = drv.find_element(By.ID, "token-form")
        wait_for("the token prompt", form.is_displayed)
        assert drv.find_element(By.ID, "node-id").text == "…"
        drv.find_element(By.ID, "token-input").send_keys(token)
        drv.find_element(By.ID, "token-submit").click()
        wait_for("the page to show the node once the token is in",
                 lambda: drv.find_element(By.ID, "node-id").text == node.id)
        assert not form.is_displayed()
        wait_for("the watch stream to be live",
                 lambda: drv.find_element(By.ID, "watch-state").text == "live")
        node.call("PUT", "/v1/kv/with-token", b"secret", token=token)
        wait_for("the event list to show the write",
                 lambda: any("with-token" in t for t in event_texts(drv)))
        # The token lives in this tab's sessionStorage, nowhere in the URL.
        assert drv.execute_script("return sessionStorage.getItem('syncmesh.token')") == token
        assert token not in drv.current_url
        os.makedirs(artifacts, exist_ok=True)
        drv.save_screenshot(os.path.join(artifacts, "status_page_token.png"))
        problems = [p for p in console_problems(drv) if "401" not in p]
        assert not problems, f"browser console errors: {problems}"
        print("token: ok")
    finally:
        if drv:
            drv.quit()
        if node:
            node.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-bin", required=True)
    parser.add_argument("--artifacts", required=True, help="folder for screenshots")
    parser.add_argument("--case", choices=("all", "cluster", "token"), default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="status-page-") as workdir:
        try:
            if args.case in ("all", "cluster"):
                test_cluster(args.node_bin, workdir, args.artifacts)
            if args.case in ("all", "token"):
                test_token(args.node_bin, workdir, args.artifacts)
        except BaseException:
            for name in sorted(os.listdir(workdir)):
                if name.endswith(".log"):
                    with open(os.path.join(workdir, name)) as f:
                        print(f"--- {name} (last lines)\n" + "".join(f.readlines()[-20:]))
            raise


if __name__ == "__main__":
    main()
