"""The console's HTTP face without a cluster: login, sessions, headers, rate limits, state."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import SecretBytes

from adapters.console import (
    LOGIN_ACTION,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    AdapterHealth,
    ConsoleApp,
    ConsoleConfig,
    Sessions,
    audit_view,
    console_state,
)
from adapters.gateway.secrets import hash_client_secret
from bus.contract.message import build_record
from bus.contract.standard import load_standard
from bus.delivery import DeadLetterCause, dead_letter_headers
from bus.ops.audit import AuditError, AuditRecord, new_record
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.dlq_records import MASK, DeadLetter, describe
from bus.ops.status import DeadLetters, PartitionStatus, StatusReport, SubscriberStatus
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.unit.test_dlq_masking import decoded

PASSWORD = "the-operators-password-0123456789"
BASE_URL = "https://127.0.0.1:8444"
STATE = {"taken_at": "2026-12-02T10:00:00.000Z", "subscriptions": [], "adapters": [], "audit": []}


class Trail:
    """Collects the audit records the console writes (the broker's part is the browser
    test's); ``fail`` makes it refuse as an unreachable broker would."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.fail = False

    async def record(self, entry: AuditRecord) -> int:
        if self.fail:
            raise AuditError("the audit topic cannot be written")
        self.records.append(entry)
        return len(self.records) - 1


def settings(folder: Path, **overrides: Any) -> dict[str, Any]:
    for name in ("cert.pem", "key.pem"):
        (folder / name).write_text("PEM")
    (folder / "session.key").write_text("k" * 40)
    values: dict[str, Any] = {
        "bootstrap_servers": "127.0.0.1:9092",
        "tls_certificate": str(folder / "cert.pem"),
        "tls_key": str(folder / "key.pem"),
        "operators": [{"name": "ani", "password_hash": hash_client_secret(PASSWORD)}],
        "session_key_file": str(folder / "session.key"),
        "login_burst": 3,
        "logins_per_minute": 1,
    }
    values.update(overrides)
    return values


@pytest.fixture
def config(tmp_path: Path) -> ConsoleConfig:
    return ConsoleConfig.model_validate(settings(tmp_path))


@pytest.fixture
def trail() -> Trail:
    return Trail()


def http_client(app: ConsoleApp) -> httpx.AsyncClient:
    """The app in this process, as a browser at 127.0.0.1 reaches it over HTTPS."""
    transport = httpx.ASGITransport(app=app.asgi(), client=("127.0.0.1", 40000))
    # A browser's form from the console's own page carries the page's origin.
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers={"origin": BASE_URL})


@pytest.fixture
async def client(config: ConsoleConfig, trail: Trail) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(ConsoleApp(config, audit=trail, state=lambda: STATE)) as client:
        yield client


async def log_in(
    client: httpx.AsyncClient, password: str = PASSWORD, name: str = "ani"
) -> httpx.Response:
    return await client.post(
        "/login", data={"name": name, "password": password}, follow_redirects=False
    )


async def test_without_a_session_the_page_sends_to_login_and_the_state_is_401(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/login")
    state = await client.get("/api/state")
    assert state.status_code == 401
    assert "subscriptions" not in state.json()
    form = await client.get("/login")
    assert form.status_code == 200
    assert 'name="password"' in form.text
    assert "<script" not in form.text


async def test_a_login_sets_a_strict_secure_http_only_cookie_and_opens_page_and_state(
    client: httpx.AsyncClient, trail: Trail
) -> None:
    answer = await log_in(client)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower(), attribute
    page = await client.get("/")
    assert page.status_code == 200
    assert '<section id="diagram">' in page.text
    assert '<div id="flows"></div>' in page.text, "filled by console.js from the state"
    assert '<script src="/console.js" defer></script>' in page.text
    assert re.search(r"<script>", page.text) is None, "no inline script"
    state = await client.get("/api/state")
    assert state.json() == {**STATE, "operator": "ani"}
    assert [(r.action, r.principal, r.result) for r in trail.records] == [
        (LOGIN_ACTION, "ani", {"outcome": "ok"})
    ]
    assert PASSWORD not in json.dumps([r.to_json() for r in trail.records])


@pytest.mark.parametrize(
    ("name", "password", "outcome", "principal"),
    [
        ("ani", "wrong-password-0123", "wrong-password", "ani"),
        ("budi", PASSWORD, "unknown-operator", "unknown"),
        ("ani", "", "wrong-password", "ani"),
    ],
)
async def test_a_failed_login_is_401_with_one_message_and_audited_without_the_password(
    client: httpx.AsyncClient, trail: Trail, name: str, password: str, outcome: str, principal: str
) -> None:
    answer = await log_in(client, password, name)
    assert answer.status_code == 401
    assert "Login failed: unknown operator or wrong password." in answer.text
    assert "set-cookie" not in answer.headers
    assert (await client.get("/api/state")).status_code == 401
    (record,) = trail.records
    assert (record.action, record.principal, record.result) == (
        LOGIN_ACTION,
        principal,
        {"outcome": outcome},
    )
    written = record.to_bytes().decode()
    assert "budi" not in written, "a name that is no operator's is not recorded"
    if password:
        assert password not in written


async def test_failed_logins_are_rate_limited_per_client_address(
    client: httpx.AsyncClient, trail: Trail
) -> None:
    codes = [(await log_in(client, "wrong-password-0123")).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    limited = await log_in(client)
    assert limited.status_code == 429, "the right password waits too"
    assert int(limited.headers["retry-after"]) >= 1
    assert [r.result["outcome"] for r in trail.records] == [
        "wrong-password", "wrong-password", "wrong-password", "rate-limited"
    ], "one record of the bucket's refusals in its refill period"  # fmt: skip


def refused_count(limit: str) -> float:
    return REGISTRY.get_sample_value("spbe_console_logins_refused_total", {"limit": limit}) or 0.0


async def test_refused_logins_are_recorded_once_per_refill_period_and_all_counted(
    config: ConsoleConfig, trail: Trail
) -> None:
    now = [1000.0]
    app = ConsoleApp(config, audit=trail, state=lambda: STATE, clock=lambda: now[0])
    before = refused_count("address")
    async with http_client(app) as client:
        codes = [(await log_in(client, "wrong-password-0123")).status_code for _ in range(10)]
        assert codes == [401] * 3 + [429] * 7
        now[0] += 60.0  # logins_per_minute is 1: one attempt back, and a new period
        codes = [(await log_in(client, "wrong-password-0123")).status_code for _ in range(3)]
        assert codes == [401, 429, 429]
        metrics = await client.get("/metrics")
    limited = [r.result for r in trail.records if r.result["outcome"] == "rate-limited"]
    assert limited == [
        {"outcome": "rate-limited", "limit": "address", "refused_unrecorded": 0},
        {"outcome": "rate-limited", "limit": "address", "refused_unrecorded": 6},
    ]
    assert len(trail.records) == 4 + 2, "4 passwords checked, 2 of 9 refusals recorded"
    assert refused_count("address") - before == 9
    assert metrics.status_code == 200
    assert "spbe_console_logins_refused_total" in metrics.text
    assert "127.0.0.1" not in metrics.text


async def test_every_login_attempt_takes_from_the_limit_not_only_failed_ones(
    client: httpx.AsyncClient,
) -> None:
    codes = [(await log_in(client)).status_code for _ in range(4)]
    assert codes == [303, 303, 303, 429], "login_burst is 3: successful logins count too"


async def test_a_login_that_cannot_be_audited_is_refused(
    client: httpx.AsyncClient, trail: Trail
) -> None:
    trail.fail = True
    answer = await log_in(client)
    assert answer.status_code == 503
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": BASE_URL},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:8444"},
        {"origin": BASE_URL, "host": "evil.example"},
        {},
    ],
)
async def test_a_form_not_from_the_consoles_own_page_is_refused(
    config: ConsoleConfig, trail: Trail, headers: dict[str, str]
) -> None:
    app = ConsoleApp(config, audit=trail, state=lambda: STATE)
    transport = httpx.ASGITransport(app=app.asgi(), client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as bare:
        answer = await bare.post(
            "/login",
            data={"name": "ani", "password": PASSWORD},
            headers=headers,
            follow_redirects=False,
        )
        assert answer.status_code == 403, headers
        assert "set-cookie" not in answer.headers
        assert (await bare.post("/logout", headers=headers)).status_code == 403
    assert trail.records == []


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin", "origin": BASE_URL},
        {"sec-fetch-site": "none"},
        {"origin": BASE_URL},
    ],
)
async def test_a_form_from_the_consoles_own_page_logs_in(
    config: ConsoleConfig, trail: Trail, headers: dict[str, str]
) -> None:
    app = ConsoleApp(config, audit=trail, state=lambda: STATE)
    transport = httpx.ASGITransport(app=app.asgi(), client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as bare:
        answer = await bare.post(
            "/login",
            data={"name": "ani", "password": PASSWORD},
            headers=headers,
            follow_redirects=False,
        )
    assert answer.status_code == 303, headers
    assert SECURITY_HEADERS["referrer-policy"] == "same-origin", "so own forms send Origin"


@pytest.mark.parametrize("path", ["/", "/login", "/console.js", "/console.css", "/api/state"])
async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    for logged_in in (False, True):
        if logged_in:
            await log_in(client)
        answer = await client.get(path, follow_redirects=False)
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers[header] == value, (path, header)
    csp = SECURITY_HEADERS["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert SECURITY_HEADERS["strict-transport-security"] == "max-age=31536000"


async def test_the_script_and_style_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    script = await client.get("/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/api/state" in script.text
    assert "innerHTML" not in script.text, "the page sets text only"
    assert (await client.get("/console.css")).headers["content-type"].startswith("text/css")


async def test_logout_ends_the_session_even_for_a_copy_of_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    await log_in(client)
    copied = client.cookies.get(SESSION_COOKIE)
    answer = await client.post("/logout", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    client.cookies.set(SESSION_COOKIE, str(copied), domain="127.0.0.1")
    assert (await client.get("/api/state")).status_code == 401


async def test_sessions_refuse_forged_expired_and_foreign_cookies() -> None:
    now = [1_000_000.0]
    hashes = {"ani": "scrypt$ani-hash"}
    sessions = Sessions(SecretBytes(b"s" * 32), ttl_s=60, clock=lambda: now[0])
    cookie = sessions.issue("ani", password_hash=hashes["ani"])
    session = sessions.verify(cookie, password_hash_of=hashes.get)
    assert session is not None
    assert session.operator == "ani"
    body, signature = cookie.split(".")
    assert "ani-hash" not in base64.urlsafe_b64decode(body + "==").decode()
    other = Sessions(SecretBytes(b"t" * 32), ttl_s=60, clock=lambda: now[0])
    assert other.verify(cookie, password_hash_of=hashes.get) is None, "another key"
    assert sessions.verify(f"{body}x.{signature}", password_hash_of=hashes.get) is None
    assert sessions.verify("é." + signature, password_hash_of=hashes.get) is None
    assert sessions.verify("", password_hash_of=hashes.get) is None
    assert sessions.verify(None, password_hash_of=hashes.get) is None
    now[0] += 61
    assert sessions.verify(cookie, password_hash_of=hashes.get) is None, "expired"
    assert "s" * 32 not in repr(sessions)


async def test_an_operator_removed_from_the_file_is_logged_out(
    tmp_path: Path, trail: Trail
) -> None:
    config = ConsoleConfig.model_validate(settings(tmp_path))
    sessions = Sessions(config.session_key, ttl_s=60)
    # signed with the right key, but budi is no operator
    cookie = sessions.issue("budi", password_hash=hash_client_secret(PASSWORD))
    app = ConsoleApp(config, audit=trail, state=lambda: STATE, sessions=sessions)
    async with http_client(app) as client:
        client.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1")
        assert (await client.get("/api/state")).status_code == 401


async def test_a_new_password_hash_ends_the_operators_sessions(
    tmp_path: Path, trail: Trail
) -> None:
    before = ConsoleConfig.model_validate(settings(tmp_path))
    async with http_client(ConsoleApp(before, audit=trail, state=lambda: STATE)) as client:
        assert (await log_in(client)).status_code == 303
        cookie = str(client.cookies.get(SESSION_COOKIE))
        assert (await client.get("/api/state")).status_code == 200
    # The same key and operator, restarted with a new hash (a new password): cookies of the
    # old one are no session, while the same file again keeps them.
    for password, code in (("a-new-password-0123456789", 401), (None, 200)):
        new_hash = hash_client_secret(password) if password else before.operators[0].password_hash
        after = before.model_copy(
            update={
                "operators": (before.operators[0].model_copy(update={"password_hash": new_hash}),)
            }
        )
        app = ConsoleApp(after, audit=trail, state=lambda: STATE)
        async with http_client(app) as client:
            client.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1")
            assert (await client.get("/api/state")).status_code == code, password


# -- the state, masked -----------------------------------------------------------------------

NIK = "3273025708904242"
NAME = "Siti Nurhaliza Rahmawati"


def _letter() -> DeadLetter:
    standard = load_standard()
    event = penduduk(4242)
    record = build_record(
        event, standard["PendudukUpdated"], source=SOURCE_DUKCAPIL, key_secret=b"k" * 32
    )
    cause = DeadLetterCause.of(
        RuntimeError(f"kolom nama terlalu pendek untuk '{NAME}' (NIK {NIK})"),
        attempts=3,
        first_failure=datetime(2026, 12, 1, tzinfo=UTC),
        topic="spbe.dukcapil.penduduk.v1.for.dinsos-penduduk",
        partition=0,
        offset=7,
        subscriber="dinsos-penduduk",
    )
    return DeadLetter(
        topic="spbe.dukcapil.penduduk.v1.for.dinsos-penduduk.dlq.dinsos-penduduk",
        partition=0,
        offset=0,
        timestamp=datetime(2026, 12, 1, 0, 5, tzinfo=UTC),
        key=record.key,
        value=record.value,
        headers=tuple(dead_letter_headers(record.headers, cause)),
    )


def _status(subscriber: str, *, committed: int, end: int, dead: int) -> SubscriberStatus:
    topic = f"spbe.dukcapil.penduduk.v1.for.{subscriber}"
    applied = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    return SubscriberStatus(
        subscriber=subscriber,
        topics=(topic,),
        partitions=(PartitionStatus(topic, 0, committed, 0, end, applied),),
        dead_letters=(DeadLetters(f"{topic}.dlq.{subscriber}", dead),),
    )


async def test_the_state_masks_dead_letters_and_says_lag_and_expiry() -> None:
    catalog, _ = load_catalog(default_catalog_path())
    letter = _letter()
    view = describe(letter, decoded(letter))
    report = StatusReport(
        (
            _status("dinsos-penduduk", committed=3, end=5, dead=1),
            _status("dinkes-penduduk", committed=0, end=2000, dead=0),
        ),
        taken_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
    )
    state = console_state(
        report,
        catalog,
        today=date(2027, 1, 2),
        max_lag=1000,
        dead_letters={"dinsos-penduduk": [view]},
        adapters=[AdapterHealth("sink", True, "HTTP 200", datetime(2026, 12, 2, tzinfo=UTC))],
        audit=[],
    )
    dinsos, dinkes = state["subscriptions"]
    assert (dinsos["lag"], dinsos["dead_letters"], dinsos["lagging"]) == (2, 1, False)
    assert dinsos["last_applied"] == "2026-12-02T09:00:00.000Z"
    assert (dinsos["expires"], dinsos["expired"]) == ("2028-06-30", False)
    assert (dinkes["lag"], dinkes["lagging"]) == (2000, True)
    assert (dinkes["expires"], dinkes["days_left"], dinkes["expired"]) == ("2026-12-31", -2, True)
    (sample,) = dinsos["dead_letter_samples"]
    assert sample["event"]["nik"] == MASK
    assert sample["event"]["nama_lengkap"] == MASK
    assert sample["event_type"] == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    text = json.dumps(state)
    assert NIK not in text
    assert NAME not in text
    assert state["adapters"] == [
        {"name": "sink", "up": True, "detail": "HTTP 200", "checked_at": "2026-12-02T00:00:00.000Z"}
    ]


async def test_audit_records_come_newest_first_with_long_digit_runs_masked() -> None:
    older = new_record("replay", subscriber="dinsos-penduduk", topics=["t"], principal="ops")
    newer = new_record(
        "dlq.redrive",
        subscriber="dinsos-penduduk",
        topics=["t"],
        reason=f"tiket #12 untuk NIK {NIK}",
        result={"applied": 3, "failed_offsets": [1, 2], "outcome": "ok"},
        principal="ops",
    )
    report = StatusReport((), taken_at=datetime(2026, 12, 2, tzinfo=UTC))
    catalog, _ = load_catalog(default_catalog_path())
    state = console_state(
        report, catalog, today=date(2026, 12, 2), max_lag=1, dead_letters={}, adapters=[],
        audit=[older, newer],
    )  # fmt: skip
    assert [r["action"] for r in state["audit"]] == ["dlq.redrive", "replay"]
    view = audit_view(newer)
    assert view["reason"] == f"tiket #12 untuk NIK {MASK}"
    assert view["outcome"] == "outcome: ok, applied: 3", "scalars only, the outcome first"


def test_a_subscription_lags_when_one_of_its_topics_is_over_max_lag_not_their_sum() -> None:
    """As the diagram's flows and the SpbeConsumerLagHigh alert count it: per topic."""
    catalog, _ = load_catalog(default_catalog_path())
    one, two = "spbe.dpmptsp.izin.v1.for.bapenda-izin", "spbe.dinkopukm.umkm.v1.for.bapenda-umkm"

    def status(subscriber: str, lags: dict[str, int]) -> SubscriberStatus:
        return SubscriberStatus(
            subscriber=subscriber,
            topics=tuple(lags),
            partitions=tuple(PartitionStatus(t, 0, 0, 0, lag) for t, lag in lags.items()),
            dead_letters=(),
        )

    report = StatusReport(
        (status("bapenda-izin", {one: 600, two: 600}), status("bapenda-umkm", {two: 1001})),
        taken_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
    )
    state = console_state(
        report,
        catalog,
        today=date(2026, 12, 2),
        max_lag=1000,
        dead_letters={},
        adapters=[],
        audit=[],
    )
    shown = {s["subscriber"]: (s["lag"], s["lagging"]) for s in state["subscriptions"]}
    assert shown == {"bapenda-izin": (1200, False), "bapenda-umkm": (1001, True)}


def test_the_page_marks_a_contract_expiring_when_the_alert_does() -> None:
    """SpbeContractExpiringSoon fires once less than N days remain (the expiry gauge is
    the end of the last day, so days_left = N is still N+ days away): the page's mark too."""
    root = Path(__file__).resolve().parents[2]
    alerts = yaml.safe_load((root / "deploy/monitoring/alerts.yaml").read_text())
    (expr,) = [
        rule["expr"]
        for group in alerts["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "SpbeContractExpiringSoon"
    ]
    found = re.search(r"< (\d+) \* 86400", expr)
    assert found is not None, expr
    script = (root / "adapters/console/static/console.js").read_text()
    (mark,) = re.findall(r'toggle\("expiring", ([^)]*)\)', script)
    assert mark == f"s.days_left !== null && s.days_left < {found.group(1)}"
