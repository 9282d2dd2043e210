"""docs/webhook.md says what the code does: its worked example, and its PHP and Java checks.

The worked example (secret, timestamp, body, signature) is recomputed with ``sign``, and
its body is rebuilt from its own attributes by the sink's encoder. The PHP and Java
functions are taken from the page and run against the same cases as ``verify``, when
``php`` and ``javac`` are on the machine, so the three implementations cannot drift.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from adapters.sinks.webhook.cloudevent import encode_body
from adapters.sinks.webhook.errors import SignatureError
from adapters.sinks.webhook.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from bus.contract.envelope import Envelope
from bus.contract.events import EVENT_TYPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhook.md"
TEXT = DOC.read_text(encoding="utf-8")
WORKED = TEXT.split("## Worked example", 1)[1]


def _block(language: str, text: str, containing: str = "") -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    matches = [b for b in blocks if containing in b]
    assert len(matches) == 1, f"expected one {language} block containing {containing!r}"
    return str(matches[0])


_FIELDS = dict(
    line.split(":", 1) for line in _block("text", WORKED).strip().splitlines() if ":" in line
)
SECRET = _FIELDS["secret"].strip()
TIMESTAMP = int(_FIELDS["timestamp"].strip())
SIGNATURE = _FIELDS["signature"].strip()
BODY = _block("json", WORKED).removesuffix("\n").encode("utf-8")


def test_the_worked_example_signature_is_what_sign_computes() -> None:
    assert sign(SECRET, TIMESTAMP, BODY) == SIGNATURE


def test_the_worked_example_verifies_at_its_own_timestamp() -> None:
    verify(
        SECRET, {TIMESTAMP_HEADER: str(TIMESTAMP), SIGNATURE_HEADER: SIGNATURE}, BODY, now=TIMESTAMP
    )


def test_the_worked_example_body_is_byte_for_byte_what_the_sink_sends() -> None:
    document = json.loads(BODY)
    envelope = Envelope(
        id=document["id"],
        source=document["source"],
        type=document["type"],
        time=datetime.fromisoformat(document["time"]),
        subject=document.get("subject"),
        dataschema=document.get("dataschema"),
        steward=document["steward"],
        sequence=document.get("sequence"),
        partitionkey=document["partitionkey"],
        dataclassification=document["dataclassification"],
        traceparent=document.get("traceparent"),
        snapshot=document.get("snapshot", False),
    )
    event = EVENT_TYPES[envelope.event_name].from_json(document["data"])
    assert encode_body(envelope, event.to_json()) == BODY


def test_the_request_shown_on_the_page_carries_the_worked_examples_signature() -> None:
    shown = _block("http", TEXT)
    assert f"{TIMESTAMP_HEADER}: {TIMESTAMP}\n" in shown
    assert f"{SIGNATURE_HEADER}: {SIGNATURE}\n" in shown


def test_the_python_example_on_the_page_compiles() -> None:
    source = _block("python", TEXT, "WebhookSink(")
    compile(source, f"{DOC.name}[python]", "exec")


class Case(NamedTuple):
    secret: str
    timestamp: str
    signature: str
    body: bytes
    now: int
    authentic: bool


_UTF8_BODY = '{"data":{"nama":"Dédé Ñurhayati"}}'.encode()
CASES = {
    "the worked example": Case(SECRET, str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP, True),
    "a UTF-8 body": Case(
        SECRET, str(TIMESTAMP), sign(SECRET, TIMESTAMP, _UTF8_BODY), _UTF8_BODY, TIMESTAMP, True
    ),
    "a tampered body": Case(
        SECRET, str(TIMESTAMP), SIGNATURE, BODY.replace(b"Siti", b"Sita"), TIMESTAMP, False
    ),
    "a wrong secret": Case(SECRET + "x", str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP, False),
    "300s old": Case(SECRET, str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP + 300, True),
    "301s old": Case(SECRET, str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP + 301, False),
    "301s ahead": Case(SECRET, str(TIMESTAMP), SIGNATURE, BODY, TIMESTAMP - 301, False),
    "uppercase hex": Case(
        SECRET, str(TIMESTAMP), "v1=" + SIGNATURE[3:].upper(), BODY, TIMESTAMP, False
    ),
    "no signature": Case(SECRET, str(TIMESTAMP), "", BODY, TIMESTAMP, False),
    "a timestamp with a fraction": Case(
        SECRET, f"{TIMESTAMP}.0", SIGNATURE, BODY, TIMESTAMP, False
    ),
}


def _python_says(case: Case) -> bool:
    headers = {TIMESTAMP_HEADER: case.timestamp, SIGNATURE_HEADER: case.signature}
    try:
        verify(case.secret, headers, case.body, now=case.now)
    except SignatureError:
        return False
    return True


def test_verify_gives_the_expected_answer_for_every_shared_case() -> None:
    assert {name: _python_says(c) for name, c in CASES.items()} == {
        name: c.authentic for name, c in CASES.items()
    }


def _write_cases(directory: Path) -> Path:
    lines = []
    for index, case in enumerate(CASES.values()):
        body = directory / f"body-{index}.json"
        body.write_bytes(case.body)
        lines.append(
            "\t".join([case.secret, case.timestamp, case.signature, str(body), str(case.now)])
        )
    cases = directory / "cases.tsv"
    cases.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cases


def _expected_lines() -> list[str]:
    return ["true" if case.authentic else "false" for case in CASES.values()]


_JAVA_CHECK = """\
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

public class Check {
    public static void main(String[] args) throws Exception {
        for (String line : Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8)) {
            String[] f = line.split("\\t", -1);
            byte[] body = Files.readAllBytes(Paths.get(f[3]));
            System.out.println(SpbeWebhookSignature.isAuthentic(
                f[0].getBytes(StandardCharsets.UTF_8), f[1], f[2], body, Long.parseLong(f[4])));
        }
    }
}
"""


@pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK (javac)")
def test_the_java_check_on_the_page_agrees_with_verify_and_builds_for_java_8(
    tmp_path: Path,
) -> None:
    (tmp_path / "SpbeWebhookSignature.java").write_text(
        _block("java", TEXT, "final class SpbeWebhookSignature"), encoding="utf-8"
    )
    (tmp_path / "Check.java").write_text(_JAVA_CHECK, encoding="utf-8")
    classes = tmp_path / "classes"
    subprocess.run(
        [
            "javac",
            "--release",
            "8",
            "-nowarn",
            "-Xlint:-options",
            "-d",
            str(classes),
            "SpbeWebhookSignature.java",
            "Check.java",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    run = subprocess.run(
        ["java", "-cp", str(classes), "Check", str(_write_cases(tmp_path))],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.split() == _expected_lines()


_PHP_CHECK = """
foreach (file($argv[1], FILE_IGNORE_NEW_LINES) as $line) {
    [$secret, $timestamp, $signature, $bodyFile, $now] = explode("\\t", $line);
    $authentic = spbe_webhook_is_authentic(
        $secret, $timestamp, $signature, file_get_contents($bodyFile), 300, (int) $now
    );
    echo $authentic ? "true\\n" : "false\\n";
}
"""


@pytest.mark.skipif(shutil.which("php") is None, reason="needs the PHP command line")
def test_the_php_check_on_the_page_agrees_with_verify(tmp_path: Path) -> None:
    script = tmp_path / "check.php"
    function = _block("php", TEXT, "function spbe_webhook_is_authentic")
    script.write_text("<?php\n" + function + _PHP_CHECK, encoding="utf-8")
    run = subprocess.run(
        ["php", str(script), str(_write_cases(tmp_path))],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.split() == _expected_lines()
