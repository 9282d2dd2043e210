"""``spbe-bus demo``: the local broker, three OPDs, one citizen's changes propagating.

Brings up the local Kafka broker secured as production is (``kafka up --secure``: SASL_SSL,
ACLs enforced), grants access from ``deploy/catalog.yaml`` as the operator, creates the
demo OPD databases (SQLite files by default; ``--db-url`` puts them on a PostgreSQL or
MariaDB server), starts the outbox relays and sinks from ``deploy/adapters``, each as its
own principal, publishes SIAK's existing residents with the day-one snapshot, plays the
story in :mod:`adapters.opd.story`, and prints where each change arrived and how long it
took, what the REST gateway (``deploy/adapters/gateway.yaml``) answered two OPD
applications over HTTPS, who received the resident's data by the ledger, then what the
brokers refused Dinkes. Exit 0 only if every change arrived everywhere it should, the
gateway answered within the contracts, and every refusal happened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from bus.localkafka.manager import LocalKafka, default_data_dir

__all__ = ["add_demo_command"]


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run the three-OPD demo on a local broker")
    demo.add_argument("--data-dir", type=Path, default=None, help=f"default {default_data_dir()}")
    demo.add_argument("--port", type=int, default=None, help="client port (default 9092)")
    demo.add_argument(
        "--db-url",
        default=None,
        help="a PostgreSQL or MariaDB server URL to create the OPD databases on "
        "(default: SQLite files)",
    )
    demo.add_argument(
        "--work-dir", type=Path, default=None, help="where the SQLite files go (default: temp)"
    )
    demo.add_argument(
        "--keep-running", action="store_true", help="leave the broker running afterwards"
    )
    demo.add_argument("--json", action="store_true", help="print the result as JSON")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    # The demo plays the reference OPD adapters, which sit above the core library.
    from adapters.opd.story import database_urls, play_story

    # The table below reports the outcome; the client's own coordinator chatter while
    # consumer groups form is noise here.
    if args.log_level.upper() != "DEBUG":
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    manager = LocalKafka(args.data_dir)
    was_running = manager.status(probe_timeout_s=2).healthy
    if not args.json:
        print("starting the local Kafka broker (the first run resolves its jars from Maven)")
    layout = manager.up(port=args.port, secure=True)
    if not args.json:
        print(f"broker ready at {layout.bootstrap_servers} (SASL_SSL, ACLs enforced)")
    try:
        with tempfile.TemporaryDirectory(prefix="spbe-demo-") as scratch:
            work_dir = args.work_dir or Path(scratch)
            work_dir.mkdir(parents=True, exist_ok=True)
            urls = database_urls(work_dir, args.db_url)
            result = asyncio.run(
                play_story(
                    manager.connection(layout),
                    urls,
                    handover_dir=work_dir / "handover",
                    gateway_dir=work_dir / "gateway",
                    ca_dir=manager.data_dir / "tls",
                )
            )
    finally:
        if not was_running and not args.keep_running:
            manager.down()
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        _print_table(result.as_json())
    return 0 if result.ok else 1


def _print_table(result: dict[str, object]) -> None:
    rows = result["arrivals"]
    assert isinstance(rows, list)
    header = ("step", "event", "from", "arrived at", "ms")
    table = [
        (
            r["step"],
            r["event"],
            r["steward"],
            r["subscriber"],
            f"{r['latency_ms']:.0f}" if r["arrived"] else "NOT ARRIVED",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    snapshot = result.get("snapshot")
    if isinstance(snapshot, dict):
        arrived = (
            f"DPMPTSP's replica holds all {snapshot['residents']} at their latest version "
            f"({snapshot['latency_ms']:.0f} ms)"
            if snapshot["arrived"]
            else f"ONLY {snapshot['at_latest_version']} of {snapshot['residents']} ARRIVED "
            "at their latest version"
        )
        print(
            f"day one: {snapshot['published']} residents already in SIAK published by the "
            f"snapshot, {snapshot['live_changes']} moved house afterwards; {arrived}"
        )
        print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in table:
        print(line.format(*row))
    print()
    if result.get("secured"):
        print(
            f"ran secured: {result['security']}, each adapter as its own principal with the "
            "users and ACLs deploy/catalog.yaml grants"
        )
    refusals = result.get("refusals")
    if isinstance(refusals, list):
        for refusal in refusals:
            verdict = "refused" if refusal["refused"] else "NOT REFUSED"
            print(f"  {refusal['who']} tries to {refusal['attempt']}: {verdict}")
            print(f"    {refusal['error']}: {refusal['message']}")
        print()
    contracts = result.get("contracts")
    if isinstance(contracts, dict):
        _print_contracts(contracts, result.get("api"))
    print(
        "every change arrived everywhere it should"
        if result["ok"]
        else "SOME CHANGES DID NOT ARRIVE"
    )


def _print_contracts(contracts: dict[str, Any], api: object) -> None:
    """The replicas' columns by contract, the gateway's answers, and the ledger's answer
    for the demo resident."""
    print("subscription contracts (each subscriber reads its projection only):")
    for opd, key in (("DPMPTSP", "dpmptsp_columns"), ("Dinsos", "dinsos_columns")):
        columns = contracts[key]
        has = "holds" if "no_kk" in columns else "has no"
        print(f"  {opd}'s replica {has} No. KK: {', '.join(columns)}")
    print()
    if isinstance(api, dict):
        _print_api(api)
    print("spbe-bus ledger who-received --nik <the demo resident>:")
    for line in contracts["who_received"]:
        print(
            f"  {line['opd']:<8} {line['subscriber']:<18} {line['deliveries']} "
            f"({', '.join(line['kinds'])}) under {line['legal_basis']}"
        )
    print()


def _print_api(api: dict[str, Any]) -> None:
    """What the REST gateway answered DinkopUKM's and DPMPTSP's applications."""
    print(
        f"REST gateway (deploy/adapters/gateway.yaml) at {api['url']}, as spbe-gateway, "
        "its certificate from the cluster's local CA:"
    )
    posted = api["posted"]
    print(
        f"  dinkopukm-siumkm POST /api/v1/umkm (UmkmTerdaftar, Idempotency-Key): {posted['status']}"
    )
    if posted["status"] == 202:
        print(
            f"    on {posted['topic']} partition {posted['partition']} offset "
            f"{posted['offset']} ({posted['latency_ms']:.0f} ms, acks=all)"
        )
        found = "carries its id" if posted["on_topic"] else "DOES NOT carry its id"
        print(f"    read back from the topic at that offset: {found}, from {posted['source']}")
        same = "the same offset" if posted["retry_same_offset"] else "A DIFFERENT ANSWER"
        print(f"    the retry with the same Idempotency-Key: {same}")
    read = api["read"]
    print(
        f"  dpmptsp-sicantik GET /api/v1/penduduk/<the demo resident>: {read['status']} "
        f"under {read['subscription']}"
    )
    if read["status"] == 200:
        within = "all within its contract" if read["within_contract"] else "NOT ALL IN ITS CONTRACT"
        print(f"    fields: {', '.join(read['fields'])} ({within})")
        print(
            f"    absent, as its contract allows none of them: {', '.join(read['withheld_absent'])}"
        )
    print()
