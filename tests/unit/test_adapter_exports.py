"""Each adapter package's __all__ names exactly its public members, sorted, each documented."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

PACKAGES = [
    "adapters.sources.outbox",
    "adapters.sources.snapshot",
    "adapters.sinks.sql",
    "adapters.sinks.webhook",
    "adapters.ledger",
    "adapters.contracts",
    "adapters.gateway",
    "adapters.console",
]


def public_names(package: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_every_public_name_of_the_package_and_nothing_else(name: str) -> None:
    package = importlib.import_module(name)
    assert set(package.__all__) == public_names(package)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_constants_first_so_additions_are_easy_to_review(name: str) -> None:
    exported = importlib.import_module(name).__all__
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_class_and_function_has_a_docstring(name: str) -> None:
    package = importlib.import_module(name)
    for member_name in package.__all__:
        member = getattr(package, member_name)
        if isinstance(member, type) or inspect.isfunction(member):
            assert (member.__doc__ or "").strip(), f"{name}.{member_name} has no docstring"
