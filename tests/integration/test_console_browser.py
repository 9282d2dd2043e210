"""The operator console in a real browser against the demo's running bus.

`spbe-bus demo --keep-running` leaves its secured broker up; the console (`spbe-bus console
serve`, its file written from deploy/console.yaml with the demo's operator credentials)
watches it, with one adapter that answers its health check (Bapenda's permit sink, run
with a metrics port) and one health URL nobody serves. Headless Chromium (Debian's
chromium and chromedriver) logs in through the form; the numbers it renders are those of
`bus.ops.status.collect_status`; then the bus changes (an event nobody consumes yet, an
undecodable record the sink dead-letters, a dead letter quoting a resident's NIK and
name) and the page shows the new numbers, masked, without a reload. A wrong password
stays on the login page. The screenshot goes to $SPBE_TEST_ARTIFACTS/console.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from adapters.gateway.secrets import hash_client_secret, new_client_secret
from adapters.gateway.tls import issue_local_certificate
from bus.connection import KafkaConnection
from bus.contract.message import build_record
from bus.contract.standard import load_standard
from bus.delivery import DeadLetterCause, dead_letter_headers, dlq_topic
from bus.localkafka.manager import LocalKafka
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.dlq_records import MASK
from bus.ops.flow_diagram import flow_element_id
from bus.ops.flow_measures import measures_of
from bus.ops.flows import flow_graph
from bus.ops.status import StatusReport, collect_status
from tests.support.events import SOURCE_DUKCAPIL, penduduk
from tests.support.ports import free_port_block

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SPBE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("SPBE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
OPERATOR = "ani"
#: The sink run with a metrics port (its /healthz answers) and the health URL nobody serves.
SINK_FILE = ROOT / "deploy" / "adapters" / "bapenda-izin-sink.yaml"
UP, DOWN = "bapenda-izin-sink", "nowhere"
IZIN_READ = "spbe.dpmptsp.izin.v1.for.bapenda-izin"
DINKES_READ = "spbe.dukcapil.penduduk.v1.for.dinkes-penduduk"
DINSOS_READ = "spbe.dukcapil.penduduk.v1.for.dinsos-penduduk"
#: A resident whose NIK and name a sink's error message quotes: the page shows neither.
RESIDENT_SERIAL = 4242
RESIDENT_NAME = "Siti Nurhaliza Rahmawati"
WAIT_S = 180.0
#: Above this lag the console shows a subscription (and its flows) as lagging.
MAX_LAG = yaml.safe_load((ROOT / "deploy" / "console.yaml").read_text())["console"]["max_lag"]
#: What the page shows where there is no value (an en dash).
NO_VALUE = "\u2013"
T = TypeVar("T")

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    HAS_SELENIUM = True
except ImportError:  # pragma: no cover - machine setup; the fixture below fails the test
    HAS_SELENIUM = False


def missing_browser_parts() -> list[str]:
    """What this machine lacks to run the acceptance test in a real browser."""
    missing = [] if HAS_SELENIUM else ["the Python package selenium"]
    if not CHROMIUM.is_file():
        missing.append(f"Debian's chromium ({CHROMIUM})")
    if not CHROMEDRIVER.is_file():
        missing.append(f"Debian's chromium-driver ({CHROMEDRIVER})")
    return missing


@pytest.fixture(scope="module", autouse=True)
def real_browser() -> None:
    """The console's acceptance test: a machine without the browser fails it, never skips."""
    missing = missing_browser_parts()
    if missing:
        pytest.fail(
            "the console's browser test needs " + ", ".join(missing)
            + "; install them with scripts/prepare-machine",
            pytrace=False,
        )  # fmt: skip


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("SPBE_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bus.cli.main", "--log-json", *args]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = WAIT_S) -> T:
    """``probe()`` once it is truthy, polled until ``timeout_s``; fails naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    problem: WebDriverException | None = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except WebDriverException as exc:  # the page is being redrawn: try again
            last = None
            problem = exc
        else:
            problem = None
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}, {problem!r})")


# -- the running bus ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, Path]]:
    """The demo's broker, left running by ``--keep-running``; stopped at the end."""
    base = tmp_path_factory.mktemp("console-demo")
    data_dir, work_dir = base / "kafka", base / "opd"
    result = subprocess.run(
        [
            *_cli("demo"),
            "--json",
            "--keep-running",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port_block(3)),
            "--work-dir",
            str(work_dir),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
    )
    manager = LocalKafka(data_dir)
    try:
        assert result.returncode == 0, result.stderr[-4000:]
        assert json.loads(result.stdout)["ok"] is True
        assert manager.status().healthy, "--keep-running leaves the broker up"
        yield manager, work_dir
    finally:
        manager.down()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def sink_health(
    demo_bus: tuple[LocalKafka, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bapenda's permit sink from deploy/adapters, as its own principal, with /healthz."""
    manager, work_dir = demo_bus
    port = free_port_block(1)
    env = {
        "SPBE_KAFKA_BOOTSTRAP": manager.connection().bootstrap_servers,
        "BAPENDA_IZIN_KAFKA_CREDENTIALS": str(work_dir / "handover" / "bapenda-izin.json"),
        "BAPENDA_DB_URL": f"sqlite:///{work_dir / 'bapenda.db'}",
    }
    log = tmp_path_factory.mktemp("sink") / "sink.log"
    process = _start(_cli("run", str(SINK_FILE), "--metrics-port", str(port)), env, log)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_for("the sink's health check", lambda: _answers(url, None))
        yield url
    finally:
        _stop(process)


def _answers(url: str, ca_file: Path | None) -> bool:
    try:
        verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        return httpx.get(url, timeout=2.0, verify=verify).is_success
    except httpx.HTTPError:
        return False


class RunningConsole:
    def __init__(self, url: str, password: str, operator: KafkaConnection) -> None:
        self.url = url
        self.password = password
        self.operator = operator


@pytest.fixture(scope="module")
def console(
    demo_bus: tuple[LocalKafka, Path], sink_health: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningConsole]:
    """``spbe-bus console serve`` from a file written from deploy/console.yaml."""
    manager, _ = demo_bus
    folder = tmp_path_factory.mktemp("console")
    operator = manager.connection()
    certificate = issue_local_certificate(manager.data_dir / "tls", folder / "tls")
    key_file = folder / "session.key"
    key_file.write_text(new_client_secret())
    key_file.chmod(0o600)
    password = new_client_secret()
    port = free_port_block(1)
    settings = yaml.safe_load((ROOT / "deploy" / "console.yaml").read_text(encoding="utf-8"))
    section: dict[str, Any] = settings["console"]
    section.update(
        bootstrap_servers=operator.bootstrap_servers,
        security={"credentials_file": str(manager.credentials_file)},
        host="127.0.0.1",
        port=port,
        tls_certificate=str(certificate.certificate),
        tls_key=str(certificate.key),
        operators=[{"name": OPERATOR, "password_hash": hash_client_secret(password)}],
        session_key_file=str(key_file),
        refresh_s=1,
        adapters=[
            {"name": UP, "health_url": sink_health},
            {"name": DOWN, "health_url": f"http://127.0.0.1:{free_port_block(1)}/healthz"},
        ],
    )
    config = folder / "console.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    process = _start(_cli("console", "serve", "--config", str(config)), {}, folder / "log")
    url = f"https://127.0.0.1:{port}"
    ca_file = manager.data_dir / "tls" / "ca.pem"
    try:
        wait_for(
            "the console to serve its login page",
            lambda: process.poll() is None and _answers(f"{url}/login", ca_file),
        )
        yield RunningConsole(url, password, operator)
    finally:
        _stop(process)
        print((folder / "log").read_text(errors="replace")[-4000:])


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,2200"):  # fmt: skip
        options.add_argument(argument)
    options.accept_insecure_certs = True  # the demo's local CA signed the certificate
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# -- what the page shows --------------------------------------------------------------------


def field(driver: WebDriver, subscriber: str, name: str) -> str:
    selector = f'td[data-subscription="{subscriber}"][data-field="{name}"]'
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def rendered(driver: WebDriver, subscribers: list[str]) -> dict[str, dict[str, str]] | None:
    """Each subscriber's lag, dead letters and last applied as the page shows them."""
    rows = {}
    for name in subscribers:
        cells = driver.find_elements(By.CSS_SELECTOR, f'tr[data-subscription="{name}"]')
        if not cells:
            return None
        rows[name] = {f: field(driver, name, f) for f in ("lag", "dead_letters", "last_applied")}
    return rows


def expected(report: StatusReport) -> dict[str, dict[str, str]]:
    return {
        s.subscriber: {
            "lag": str(s.lag),
            "dead_letters": str(s.dead_letter_count),
            "last_applied": _iso(s.last_applied),
        }
        for s in report.subscribers
    }


def flow_states(driver: WebDriver) -> dict[str, str] | None:
    """Flow element id -> the state its class gives, of the diagram the page shows."""
    edges = driver.find_elements(By.CSS_SELECTOR, "#flows svg g.flow")
    if not edges:
        return None
    states: dict[str, str] = {}
    for edge in edges:
        classes = (edge.get_attribute("class") or "").split()
        state = [c.removeprefix("state-") for c in classes if c.startswith("state-")]
        states[edge.get_attribute("id") or ""] = state[0] if len(state) == 1 else "?"
    return states


def expected_states(report: StatusReport) -> dict[str, str]:
    """What each flow's colour must say, from ``spbe-bus status``'s numbers."""
    catalog, _ = load_catalog(default_catalog_path())
    graph = flow_graph(catalog)
    measures = measures_of(graph.flows, report, {}, today=datetime.now(UTC).date(), max_lag=MAX_LAG)
    return {flow_element_id(key): m.state.value for key, m in measures.items()}


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return NO_VALUE
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_in(driver: WebDriver, password: str) -> None:
    driver.find_element(By.ID, "name").clear()
    driver.find_element(By.ID, "name").send_keys(OPERATOR)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()


# -- changing the bus -----------------------------------------------------------------------


async def _produce(operator: KafkaConnection, records: list[tuple[str, Any]]) -> None:
    producer = AIOKafkaProducer(**operator.aiokafka_options(), acks="all")
    await producer.start()
    try:
        for topic, (key, value, headers) in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def change_the_bus(operator: KafkaConnection) -> None:
    """An event Dinkes has not read yet, a record Bapenda's sink cannot decode (it
    dead-letters it), and a dead letter of Dinsos whose cause quotes a NIK and a name."""
    standard = load_standard()
    resident = penduduk(RESIDENT_SERIAL)
    record = build_record(
        resident, standard["PendudukUpdated"], source=SOURCE_DUKCAPIL, key_secret=b"k" * 32
    )
    cause = DeadLetterCause.of(
        RuntimeError(f"kolom nama terlalu pendek untuk '{RESIDENT_NAME}' (NIK {resident.nik})"),
        attempts=3,
        first_failure=datetime.now(UTC),
        topic=DINSOS_READ,
        partition=0,
        offset=0,
        subscriber="dinsos-penduduk",
    )
    headers = list(dead_letter_headers(record.headers, cause))
    asyncio.run(
        _produce(
            operator,
            [
                (DINKES_READ, (b"dinkes-key", b"an event not read yet", [])),
                (IZIN_READ, (b"izin-key", b"not an event", [])),
                (dlq_topic(DINSOS_READ, "dinsos-penduduk"), (record.key, record.value, headers)),
            ],
        )
    )


# -- the test -------------------------------------------------------------------------------


def test_the_console_shows_the_live_bus_and_updates_itself_without_a_reload(
    console: RunningConsole, browser: WebDriver
) -> None:
    catalog, _ = load_catalog(default_catalog_path())
    driver = browser
    driver.get(f"{console.url}/")
    assert driver.current_url == f"{console.url}/login", "no session: the login form"

    log_in(driver, "not-the-password")
    error = wait_for("the refusal", lambda: driver.find_elements(By.ID, "login-error"))
    assert error[0].text == "Login failed: unknown operator or wrong password."
    assert driver.current_url == f"{console.url}/login", "a wrong password stays on the form"
    assert "Subscriptions" not in driver.page_source

    log_in(driver, console.password)
    wait_for("the console page", lambda: driver.current_url == f"{console.url}/")
    assert driver.find_element(By.ID, "operator").text == OPERATOR
    cookie = driver.get_cookie("__Host-spbe-console")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")

    # The numbers the page renders are those `spbe-bus status` reads (the bus is quiet:
    # only Bapenda's permit sink runs, and it has read everything).
    report = asyncio.run(collect_status(console.operator, catalog))
    names = [s.subscriber for s in report.subscribers]
    assert {s.subscriber for s in catalog.subscriptions} <= set(names)
    before = expected(report)
    assert wait_for("the numbers of spbe-bus status", lambda: rendered(driver, names) == before)
    assert int(before["dinkes-penduduk"]["lag"]) > 0, "the demo runs no Dinkes sink"
    assert before["dpmptsp-penduduk"]["last_applied"] != NO_VALUE
    # Each read below is retried while the page redraws (an element read as it is replaced
    # is stale): wait_for tries again on a WebDriverException.
    adapters = wait_for(
        "the adapters' states",
        lambda: {
            name: driver.find_element(
                By.CSS_SELECTOR, f'[data-adapter="{name}"][data-field="state"]'
            ).text
            for name in (UP, DOWN)
        },
    )
    assert adapters == {UP: "up", DOWN: "down"}
    # The data-flow diagram: every flow of the catalogue, coloured by the same numbers.
    states = wait_for("the data-flow diagram", lambda: flow_states(driver))
    assert states == expected_states(report)
    assert driver.find_element(By.ID, "diagram-error").get_attribute("hidden") is not None
    dinkes = next(s for s in catalog.subscriptions if s.subscriber == "dinkes-penduduk")
    expires = wait_for("Dinkes's expiry", lambda: field(driver, "dinkes-penduduk", "expires"))
    assert expires.startswith(dinkes.expires.isoformat())
    days_left = (dinkes.expires - datetime.now(UTC).date()).days
    shown_days = wait_for(
        "Dinkes's days left", lambda: field(driver, "dinkes-penduduk", "days_left")
    )
    assert shown_days == str(days_left)
    logins = wait_for(
        "both logins in the audit records",
        lambda: (
            [
                row.text
                for row in driver.find_elements(By.CSS_SELECTOR, 'tr[data-action="console.login"]')
            ]
            if len(driver.find_elements(By.CSS_SELECTOR, 'tr[data-action="console.login"]')) >= 2
            else None
        ),
    )
    assert "outcome: ok" in logins[0], "newest first: the login that succeeded"
    assert "outcome: wrong-password" in logins[1]
    assert all(OPERATOR in row for row in logins)
    assert "not-the-password" not in driver.page_source
    assert driver.find_elements(By.CSS_SELECTOR, 'tr[data-action="access.grant"]'), (
        "the demo's grants are in the trail"
    )

    # The bus changes; the page follows without a reload.
    driver.execute_script("document.body.dataset.marker = 'not reloaded';")
    change_the_bus(console.operator)

    def one_more(subscriber: str, name: str) -> str:
        return str(int(before[subscriber][name]) + 1)

    def changed() -> bool:
        shown = rendered(driver, names)
        return shown is not None and (
            shown["dinkes-penduduk"]["lag"] == one_more("dinkes-penduduk", "lag")
            and shown["bapenda-izin"]["dead_letters"] == one_more("bapenda-izin", "dead_letters")
            and shown["dinsos-penduduk"]["dead_letters"]
            == one_more("dinsos-penduduk", "dead_letters")
        )

    wait_for("the new lag and dead letters on the page", changed)
    dead_lettering = flow_element_id("bapenda-izin:spbe.dpmptsp.izin.v1")
    wait_for(
        "the sink's flow drawn as dead-lettering",
        lambda: (flow_states(driver) or {}).get(dead_lettering) == "dead-lettering",
    )
    assert driver.execute_script("return document.body.dataset.marker;") == "not reloaded"
    assert int(driver.find_element(By.ID, "taken-at").get_attribute("data-reads") or 0) > 1

    # The new numbers are still those of `spbe-bus status`.
    after = asyncio.run(collect_status(console.operator, catalog))
    now = expected(after)
    assert wait_for("the page to match status again", lambda: rendered(driver, names) == now)
    assert wait_for(
        "the diagram to match status again",
        lambda: flow_states(driver) == expected_states(after),
    )

    # Dinsos's dead letter: the event with its personal fields masked, no NIK, no name.
    def dinsos_letter() -> tuple[str, str] | None:
        letters = driver.find_elements(
            By.CSS_SELECTOR, 'li[data-subscription="dinsos-penduduk"][data-field="dead_letter"]'
        )
        if not letters:
            return None
        return (
            letters[0].find_element(By.CSS_SELECTOR, '[data-field="event"]').text,
            letters[0].find_element(By.CSS_SELECTOR, '[data-field="error_message"]').text,
        )

    shown_event, message = wait_for("Dinsos's dead letter", dinsos_letter)
    event = json.loads(shown_event)
    assert event["nik"] == MASK
    assert event["nama_lengkap"] == MASK
    assert MASK in message
    page = driver.page_source
    resident = penduduk(RESIDENT_SERIAL)
    assert resident.nik not in page
    assert RESIDENT_NAME not in page
    assert driver.find_elements(
        By.CSS_SELECTOR, 'li[data-subscription="bapenda-izin"][data-field="dead_letter"]'
    ), "the sink's own dead letter is listed too"

    shot = artifacts_dir() / "console.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Logging out ends the session: the page sends back to the form.
    driver.find_element(By.ID, "logout").click()
    wait_for("the login form after logout", lambda: driver.current_url == f"{console.url}/login")
    driver.get(f"{console.url}/")
    assert driver.current_url == f"{console.url}/login"
