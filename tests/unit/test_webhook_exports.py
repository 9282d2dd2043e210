"""adapters.sinks.webhook.__all__ names exactly its public members, sorted, each documented."""

from __future__ import annotations

import inspect

import adapters.sinks.webhook as webhook

SUBMODULES = {"cloudevent", "config", "errors", "signature", "sink"}


def test_all_lists_every_public_name_of_the_package_and_nothing_else() -> None:
    public = {
        name
        for name in vars(webhook)
        if not name.startswith("_") and name not in SUBMODULES and name != "annotations"
    }
    assert set(webhook.__all__) == public


def test_all_is_sorted_constants_first_so_additions_are_easy_to_review() -> None:
    assert webhook.__all__ == sorted(webhook.__all__, key=lambda n: (not n.isupper(), n))


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in webhook.__all__:
        member = getattr(webhook, name)
        if isinstance(member, type) or inspect.isfunction(member):
            assert (member.__doc__ or "").strip(), f"{name} has no docstring"
