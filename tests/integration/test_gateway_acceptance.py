"""Acceptance of the REST gateway: a real ``spbe-bus run`` process on loopback, on the
secured broker, provisioned by ``catalog apply``, its read models filled by the contract
service from the raw events Disdukcapil and Bapenda publish with their own credentials.

One deployment serves the module (tests.support.gateway_acceptance), in order: the restart
and rate-limit tests replace the gateway process, the last ones stop it and check that no
answer held a NIK or field the client may not see and no log line or audit record a NIK.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretBytes

from adapters.gateway.tokens import TokenIssuer
from adapters.ledger import create_ledger_table
from bus.connection import KafkaConnection
from bus.contract.standard import example
from bus.ops.audit import read_audit
from tests.support.api_clients import run_java_client, run_php_client
from tests.support.events import penduduk
from tests.support.gateway import CLIENT_SECRETS, TOKEN_KEY, GatewayScene
from tests.support.gateway_acceptance import (
    NTPD,
    PAJAK,
    READS,
    SIAK,
    SICANTIK,
    SIPD,
    SIUMKM,
    Answer,
    Deployment,
    caller,
    field_paths,
    records_with_id,
    set_up,
    umkm_body,
    wait_healthy,
)
from tests.support.gateway_deployment import provision_scene, single_broker_catalogue
from tests.support.projected import catalog_subscription

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def deployment(
    secured_kafka: KafkaConnection, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("gateway-acceptance")
    scene = GatewayScene(folder / "scene", secured_kafka.bootstrap_servers)
    single_broker_catalogue(scene)
    handover = folder / "handover"
    provision_scene(secured_kafka, scene, handover)
    deployment = asyncio.run(set_up(secured_kafka, scene, handover))
    try:
        yield deployment
    finally:
        for process in [deployment.contracts, *deployment.processes]:
            process.stop()


# -- 200, 304, 404: reads within the subscription ---------------------------------------------


async def test_a_resident_is_read_with_only_the_subscriptions_fields_and_revalidated(
    deployment: Deployment,
) -> None:
    nik = next(iter(deployment.residents))
    for client in (SICANTIK, SIUMKM, SIPD):
        async with caller(deployment, client) as api:
            answer = await api.get(f"/api/v1/penduduk/{nik}")
            assert answer.status == 200, answer.text
            document = answer.json()["data"]
            assert document["nik"] == nik
            assert field_paths(document) <= READS[client], client
            assert answer.headers["etag"]
            assert answer.headers["last-modified"]
            again = await api.get(
                f"/api/v1/penduduk/{nik}", {"If-None-Match": answer.headers["etag"]}
            )
            assert again.status == 304
            assert again.text == ""
    async with caller(deployment, SIUMKM) as api:
        narrow = (await api.get(f"/api/v1/penduduk/{nik}")).json()["data"]
    assert "alamat" in narrow
    assert set(narrow["alamat"]) == {"kode_wilayah"}
    assert "tanggal_lahir" not in narrow
    assert "no_kk" not in narrow


async def test_a_region_lists_only_the_subscriptions_residents_and_a_payment_is_found_by_ntpd(
    deployment: Deployment,
) -> None:
    async with caller(deployment, SICANTIK) as api:
        region = await api.get("/api/v1/penduduk?kode_wilayah=32.73&limit=50")
        assert region.status == 200, region.text
        listed = {person["nik"] for person in region.json()["data"]}
        assert set(deployment.residents) <= listed
        assert deployment.only_bapenda not in listed  # another subscriber's resident
        theirs = await api.get(f"/api/v1/penduduk/{deployment.only_bapenda}")
        assert theirs.status == 404, theirs.text
        payment = await api.get(f"/api/v1/pajak?ntpd={NTPD}")
        assert payment.status == 200, payment.text
        (found,) = payment.json()["data"]
        allowed = set(catalog_subscription("dpmptsp-pajak").allowed_fields[PAJAK])
        assert found["ntpd"] == NTPD
        assert field_paths(found) <= allowed
        assert "wajib_pajak" not in found


async def test_an_unknown_resident_is_404_without_its_nik_in_the_answer(
    deployment: Deployment,
) -> None:
    unknown = "3273025708909999"
    async with caller(deployment, SICANTIK) as api:
        answer = await api.get(f"/api/v1/penduduk/{unknown}")
    assert answer.status == 404, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert unknown not in answer.text


# -- 401: tokens -----------------------------------------------------------------------------


async def test_expired_forged_and_garbled_tokens_and_a_wrong_secret_are_401(
    deployment: Deployment,
) -> None:
    nik = next(iter(deployment.residents))
    an_hour_ago = time.time() - 3600
    expired = TokenIssuer(SecretBytes(TOKEN_KEY.encode()), clock=lambda: an_hour_ago)
    forged = TokenIssuer(SecretBytes(b"another-key-than-the-gateways-0123456789abcdef"))
    tokens = {
        "expired": expired.issue(SICANTIK, "data:read").access_token,
        "forged": forged.issue(SICANTIK, "data:read").access_token,
        "garbled": "not.a.token",
    }
    async with deployment.scene.client() as http:
        for what, token in tokens.items():
            answer = await http.get(
                f"/api/v1/penduduk/{nik}", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 401, what
            assert 'error="invalid_token"' in answer.headers["www-authenticate"], what
            assert nik not in answer.text
        bare = await http.get(f"/api/v1/penduduk/{nik}")
        assert bare.status_code == 401
        wrong = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(SICANTIK, "not-the-secret-0123456789"),
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"


# -- 403: another client's rights, a non-steward ----------------------------------------------


async def test_a_client_is_refused_what_only_another_client_may_do(
    deployment: Deployment,
) -> None:
    nik = next(iter(deployment.residents))
    async with caller(deployment, SICANTIK) as sicantik:
        posted = await sicantik.post("/api/v1/umkm", umkm_body(900))  # only SIUMKM posts UMKM
        assert posted.status == 403, posted.text
    async with caller(deployment, SIAK) as siak:
        read = await siak.get(f"/api/v1/penduduk/{nik}")  # SIAK posts; it reads nothing
        assert read.status == 403, read.text
        assert nik not in read.text
    async with caller(deployment, SIPD) as sipd:
        izin = await sipd.get(f"/api/v1/pajak?ntpd={NTPD}")  # no pajak subscription
        assert izin.status == 403, izin.text


async def test_an_event_posted_by_a_client_that_is_not_its_steward_is_403(
    deployment: Deployment,
) -> None:
    body = json.dumps(penduduk(31).to_json()).encode()
    async with caller(deployment, SIPD) as sipd:  # Bapenda's application, not Disdukcapil's
        answer = await sipd.post("/api/v1/events/PendudukUpdated", body)
    assert answer.status == 403, answer.text
    assert answer.json()["type"] == "urn:spbe:problem:not-steward"
    assert penduduk(31).nik not in answer.text


# -- 202 and idempotent retries ---------------------------------------------------------------


async def test_a_retry_with_the_same_key_replays_the_202_and_publishes_once(
    deployment: Deployment,
) -> None:
    key = f"umkm-{uuid.uuid4()}"
    body = umkm_body(101)
    async with caller(deployment, SIUMKM) as api:
        first = await api.post("/api/v1/umkm", body, {"Idempotency-Key": key})
        assert first.status == 202, first.text
        assert "idempotent-replayed" not in first.headers
        again = await api.post("/api/v1/umkm", body, {"Idempotency-Key": key})
        assert again.status == 202, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        other = await api.post("/api/v1/umkm", umkm_body(102), {"Idempotency-Key": key})
        assert other.status == 422, other.text
        assert other.json()["type"] == "urn:spbe:problem:idempotency-key-reused"
    accepted = first.json()
    assert accepted["topic"] == deployment.umkm_topic
    assert await records_with_id(deployment, accepted["id"]) == 1


# -- 400, 413, 415, 422: bodies ---------------------------------------------------------------


async def test_malformed_oversized_non_json_and_invalid_bodies_are_refused(
    deployment: Deployment,
) -> None:
    invalid = json.loads(umkm_body(103))
    invalid["skala_usaha"] = "RAKSASA"
    async with caller(deployment, SIUMKM) as api:
        malformed = await api.post("/api/v1/umkm", b'{"id_umkm": "UMKM-3273", "nib": ')
        assert malformed.status == 400, malformed.text
        assert "UMKM-3273" not in malformed.text  # the position, never the text
        too_large = await api.post("/api/v1/umkm", b'{"x": "' + b"a" * 70_000 + b'"}')
        assert too_large.status == 413, too_large.text
        text = await api.post("/api/v1/umkm", umkm_body(104), {"Content-Type": "text/plain"})
        assert text.status == 415, text.text
        refused = await api.post("/api/v1/umkm", json.dumps(invalid).encode())
        assert refused.status == 422, refused.text
        fields = [error["field"] for error in refused.json()["errors"]]
        assert "skala_usaha" in fields
        assert "RAKSASA" not in refused.text
        unknown = await api.post("/api/v1/events/TidakAda", umkm_body(105))
        assert unknown.status == 404, unknown.text
    for answer in (malformed, too_large, text, refused, unknown):
        assert answer.headers["content-type"].startswith("application/problem+json")


# -- 503: the ledger cannot record a delivery -------------------------------------------------


async def test_a_read_is_503_and_carries_nothing_while_the_ledger_table_is_gone(
    deployment: Deployment,
) -> None:
    nik = next(iter(deployment.residents))
    engine = sa.create_engine(deployment.scene.ledger_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE spbe_ledger"))
        try:
            async with caller(deployment, SICANTIK) as api:
                answer = await api.get(f"/api/v1/penduduk/{nik}")
        finally:
            create_ledger_table(engine)
    finally:
        engine.dispose()
    assert answer.status == 503, answer.text
    assert answer.json()["type"] == "urn:spbe:problem:ledger-unavailable"
    assert answer.headers["retry-after"]
    assert nik not in answer.text
    async with caller(deployment, SICANTIK) as api:
        assert (await api.get(f"/api/v1/penduduk/{nik}")).status == 200


# -- the documented clients -------------------------------------------------------------------


CLIENTS = [
    pytest.param(run_java_client, id="java", marks=pytest.mark.skipif(
        shutil.which("javac") is None, reason="javac (JDK 17) is not installed")),
    pytest.param(run_php_client, id="php", marks=pytest.mark.skipif(
        shutil.which("php") is None, reason="php (php-cli, curl) is not installed")),
]  # fmt: skip


@pytest.mark.parametrize("runner", CLIENTS)
async def test_the_documented_client_gets_a_token_posts_an_umkm_and_reads_a_resident(
    deployment: Deployment, runner: Any, tmp_path: Path
) -> None:
    nik = next(iter(deployment.residents))
    env = {
        "SPBE_API_URL": deployment.scene.url,
        "SPBE_API_CLIENT_ID": SIUMKM,
        "SPBE_API_CLIENT_SECRET": CLIENT_SECRETS[SIUMKM],
        "SPBE_API_CA": str(deployment.scene.ca_file),
        "SPBE_API_NIK": nik,
        "SPBE_API_IDEMPOTENCY_KEY": f"client-{uuid.uuid4()}",
    }
    lines = await asyncio.to_thread(runner, env, tmp_path)
    assert [(line["step"], line["status"]) for line in lines] == [
        ("token", 200),
        ("umkm", 202),
        ("penduduk", 200),
    ], lines
    assert lines[1]["body"]["topic"] == deployment.umkm_topic
    person = lines[2]["body"]["data"]
    assert person["nik"] == nik
    assert field_paths(person) <= READS[SIUMKM]
    deployment.answers.append(
        Answer(SIUMKM, "GET", "client", 200, httpx.Headers(), json.dumps(lines[2]["body"]))
    )


# -- a restart, the rate limit, the stop and the logs -----------------------------------------


async def test_a_retry_after_a_gateway_restart_replays_the_first_answer(
    deployment: Deployment,
) -> None:
    key = f"umkm-restart-{uuid.uuid4()}"
    body = umkm_body(201)
    async with caller(deployment, SIUMKM) as api:
        first = await api.post("/api/v1/umkm", body, {"Idempotency-Key": key})
    assert first.status == 202, first.text
    deployment.restart("gateway-restarted")
    await wait_healthy(deployment)
    async with caller(deployment, SIUMKM) as api:
        again = await api.post("/api/v1/umkm", body, {"Idempotency-Key": key})
    assert again.status == 202, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await records_with_id(deployment, first.json()["id"]) == 1


async def test_a_client_over_its_rate_is_429_with_retry_after(deployment: Deployment) -> None:
    deployment.restart("gateway-slow", rate_limit={"requests_per_s": 0.01, "burst": 3})
    await wait_healthy(deployment)
    nik = next(iter(deployment.residents))
    async with caller(deployment, SICANTIK) as api:
        answers = [await api.get(f"/api/v1/penduduk/{nik}") for _ in range(5)]
    statuses = [a.status for a in answers]
    assert statuses[0] == 200, answers[0].text
    assert 429 in statuses, statuses
    limited = answers[statuses.index(429)]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["type"] == "urn:spbe:problem:rate-limited"
    async with caller(deployment, SIPD) as other:  # another client's bucket is its own
        assert (await other.get(f"/api/v1/penduduk/{nik}")).status == 200


def test_no_answer_holds_a_nik_or_a_field_the_client_may_not_see(deployment: Deployment) -> None:
    visible = {
        SICANTIK: set(deployment.residents),
        SIPD: set(deployment.residents) | {deployment.only_bapenda},
        SIUMKM: set(deployment.residents) | {example("UmkmTerdaftar")["nik_pemilik"]},
        SIAK: set(),
    }
    every_nik = set().union(*visible.values()) | {penduduk(31).nik}
    assert len(deployment.answers) > 20
    for answer in deployment.answers:
        unseen = every_nik - visible[answer.client]
        assert not {nik for nik in unseen if nik in answer.text}, (answer.client, answer.path)
        if answer.status == 200 and "penduduk" in answer.path:
            data = answer.json()["data"]
            for person in data if isinstance(data, list) else [data]:
                assert field_paths(person) <= READS[answer.client], (answer.client, answer.path)


def test_each_gateway_stops_on_sigterm_with_0_and_never_logged_a_nik(
    deployment: Deployment,
) -> None:
    assert deployment.gateway.stop() == 0, deployment.gateway.output()[-4000:]
    niks = set(deployment.residents) | {
        deployment.only_bapenda,
        example("UmkmTerdaftar")["nik_pemilik"],
        penduduk(31).nik,
        "3273025708909999",
    }
    assert len(deployment.processes) == 3
    for process in deployment.processes:
        assert process.exit_code == 0, process.name
        lines = process.log_lines()
        assert any(line.get("event") == "gateway.started" for line in lines), process.name
        assert not {nik for nik in niks if nik in process.output()}, process.name


async def test_the_calls_are_in_the_audit_trail_with_their_subscription_and_no_nik(
    deployment: Deployment,
) -> None:
    """Run after the stop: a stopping gateway writes what its audit queue still holds."""
    assert deployment.gateway.stop() == 0
    records = await read_audit(deployment.operator, subscriber="dinkopukm-penduduk")
    calls = [r for r in records if r.action == "api.call"]
    reads = [r for r in calls if r.result["status"] == 200]
    assert reads, "the gateway audited DINKOPUKM's reads"
    assert all(r.principal == SIUMKM for r in calls)
    assert all(r.result["persons"] == 1 for r in reads)
    assert all(r.parameters["endpoint"] == "/api/v1/penduduk/{nik}" for r in reads)
    posts = [
        r
        for r in await read_audit(deployment.operator, subscriber=SIUMKM)
        if r.parameters.get("endpoint") == "/api/v1/umkm" and r.result["status"] == 202
    ]
    assert posts, "the gateway audited SIUMKM's accepted posts"
    assert all(r.topics and isinstance(r.parameters["offset"], int) for r in posts)
    trail = json.dumps([r.to_json() for r in [*calls, *posts]], default=str)
    assert not {nik for nik in deployment.residents if nik in trail}
