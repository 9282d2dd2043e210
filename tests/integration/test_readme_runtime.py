"""README.md's Kafka examples run as written against the session's broker."""

from __future__ import annotations

import pytest

from tests.unit.test_readme import ALL_BLOCKS

pytestmark = pytest.mark.integration
KAFKA_BLOCKS = [block for block in ALL_BLOCKS if "BOOTSTRAP" in block]


def test_readme_has_a_kafka_example() -> None:
    assert KAFKA_BLOCKS


@pytest.mark.parametrize("index", range(len(KAFKA_BLOCKS)))
def test_readme_kafka_example_runs(
    index: int, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPBE_KAFKA_BOOTSTRAP", kafka_bootstrap)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    code = compile(KAFKA_BLOCKS[index], f"README.md[kafka block {index}]", "exec")
    exec(code, namespace)  # noqa: S102
