"""bus.__all__ names exactly the public members, sorted, each documented."""

from __future__ import annotations

import inspect

import bus


def test_all_lists_every_public_name_of_the_package_and_nothing_else() -> None:
    public = {
        name
        for name, value in vars(bus).items()
        if not name.startswith("_")
        and not getattr(value, "__name__", "").startswith("bus.")
        and name != "annotations"
    }
    assert set(bus.__all__) == public


def test_all_is_sorted_so_additions_are_easy_to_review() -> None:
    assert bus.__all__ == sorted(bus.__all__, key=lambda n: (not n.isupper(), n))


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in bus.__all__:
        member = getattr(bus, name)
        if isinstance(member, type) or inspect.isfunction(member):
            assert (member.__doc__ or "").strip(), f"bus.{name} has no docstring"
