"""The arena under a real browser: one engine (the debug binary, a fresh
SQLite database) with users of each plan and signed traffic sent through
the real webhook, and Debian's Chromium driven by Playwright.

Run through `scripts/browser`, which installs what this needs and sets
COLISEUM_BINARY, COLISEUM_AXE, COLISEUM_CHROMIUM and COLISEUM_SCREENSHOTS.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

BINARY = os.environ["COLISEUM_BINARY"]
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
PASSWORD = "arena-" + secrets.token_hex(8)

# Who signs in, on which plan; the artist account speaks for art_1.
USERS = {
    "admin": ("admin@arena.test", "admin", "enterprise", []),
    "enterprise": ("enterprise@arena.test", "artist", "enterprise", ["art_1"]),
    "pro": ("pro@arena.test", "fan", "pro", []),
    "basic": ("basic@arena.test", "fan", "basic", []),
}


@dataclass
class Engine:
    url: str
    database: str

    def get(self, path, cookie=None):
        request = urllib.request.Request(self.url + path)
        if cookie:
            request.add_header("Cookie", cookie)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except urllib.error.URLError:
            return 0, b""

    def deliver(self, body: str, webhook_id: str, timestamp: int, signature: str):
        request = urllib.request.Request(
            self.url + "/v1/passport/events",
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202, response.read()
            return json.loads(response.read())

    def ingest(self, envelope: dict):
        """Sends one entry, signed as Passport signs it; returns when acknowledged."""
        body = json.dumps(envelope)
        webhook_id = "msg_" + secrets.token_hex(8)
        timestamp = int(time.time())
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        mac = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
        answer = self.deliver(body, webhook_id, timestamp, "v1," + base64.b64encode(mac).decode())
        assert answer["accepted"] == 1, answer
        return answer


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout=30.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s")


@pytest.fixture(scope="session")
def engine():
    work = Path(tempfile.mkdtemp(prefix="coliseum-browser-"))
    database = f"sqlite://{work}/coliseum.db"
    for email, role, plan, artists in USERS.values():
        command = [BINARY, "users", "create", "--database-url", database, "--email", email,
                   "--password", PASSWORD, "--role", role, "--plan", plan]
        for artist in artists:
            command += ["--artist", artist]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    log = open(work / "serve.log", "w")
    server = subprocess.Popen(
        [BINARY, "serve", "--database-url", database, "--listen", f"127.0.0.1:{port}",
         "--passport-webhook-secret", SECRET, "--dna-interval-ms", "1000",
         # Every browser of the suite comes from 127.0.0.1: one anonymous
         # allowance (30 a minute) would refuse the suite, not a person.
         # Rate limits have their own tests (tests/server/ratelimits.rs).
         "--rate-limits", "false"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    running = Engine(url=f"http://127.0.0.1:{port}", database=database)
    try:
        wait_until(lambda: running.get("/readyz")[0] == 200)
        generated = subprocess.run(
            [BINARY, "generate", "--events", "4000", "--artists", "60", "--days", "3", "--seed", "7",
             "--signed", "--batch", "200", "--secret", SECRET],
            check=True, capture_output=True, text=True,
        ).stdout
        for line in generated.splitlines():
            d = json.loads(line)
            running.deliver(d["body"], d["webhook_id"], d["webhook_timestamp"], d["webhook_signature"])
        admin = login_cookie(running, "admin")
        # Processed: the admin's (live) plays board ranks every artist.
        wait_until(lambda: json.loads(running.get("/v1/leaderboards/plays?range=7d", admin)[1])["total_ranked"] >= 50)
        yield running
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


_cookies = {}


def login_cookie(engine, who):
    """A session of `who` for API reads, signed in once per suite: sign-ins
    count against a per-email allowance (10 in 15 minutes)."""
    if who in _cookies:
        return _cookies[who]
    email = USERS[who][0]
    request = urllib.request.Request(
        engine.url + "/v1/auth/login",
        data=json.dumps({"email": email, "password": PASSWORD}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        cookie = response.headers["Set-Cookie"].split(";")[0]
    _cookies[who] = cookie
    return cookie


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=os.environ["COLISEUM_CHROMIUM"],
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


_signed_in = {}


@pytest.fixture
def page_for(browser, engine):
    """A new browser context per call, signed in as `who` (None: nobody):
    through the sign-in page the first time, then with that session."""
    contexts = []

    def open_page(who=None, width=1440, height=900, bypass_csp=False):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            base_url=engine.url,
            accept_downloads=True,
            bypass_csp=bypass_csp,
            storage_state=_signed_in.get(who),
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        if who and who not in _signed_in:
            sign_in(page, who)
            _signed_in[who] = context.storage_state()
        return page

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page, who):
    page.goto("/login")
    page.fill("#email", USERS[who][0])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/app/analytics")
