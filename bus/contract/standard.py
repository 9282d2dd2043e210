"""Where the data standard (*Standar Data*) lives: the ``.avsc`` files and their examples.

The standard is the ``schemas/avro/`` folder of this repository, its one home. A built
wheel carries a copy of it as ``bus/_standard`` (see ``pyproject.toml``), so an installed
library finds it from any working directory; in a source checkout (and an editable install)
the folder itself is used. ``SPBE_SCHEMAS_DIR`` points elsewhere (an OPD's own checkout of
the standard, or a newer release of it).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from bus.contract.schema import AvroSchema, load_schema_dir
from bus.errors import ConfigError

__all__ = ["default_schema_dir", "example", "load_standard"]


#: Where a built wheel puts the standard: inside the installed ``bus`` package.
PACKAGED_SCHEMA_DIR = Path(__file__).resolve().parents[1] / "_standard"
#: The standard's home in a source checkout: ``schemas/avro`` beside the ``bus`` package.
CHECKOUT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"


def default_schema_dir() -> Path:
    """``$SPBE_SCHEMAS_DIR``, else the copy an installed wheel carries, else the checkout's."""
    if explicit := os.environ.get("SPBE_SCHEMAS_DIR"):
        return Path(explicit)
    if PACKAGED_SCHEMA_DIR.is_dir():
        return PACKAGED_SCHEMA_DIR
    return CHECKOUT_SCHEMA_DIR


@cache
def _load(path: Path) -> dict[str, AvroSchema]:
    if not path.is_dir():
        raise ConfigError(
            f"the schema directory {path} does not exist",
            fix="set SPBE_SCHEMAS_DIR to the folder holding the .avsc files",
        )
    return load_schema_dir(path)


def load_standard(path: Path | None = None) -> dict[str, AvroSchema]:
    """Every schema of the standard, keyed by event name (``PendudukUpdated``)."""
    return _load((path or default_schema_dir()).resolve())


def example(event_name: str, path: Path | None = None) -> dict[str, Any]:
    """The example instance of ``event_name``, as plain JSON."""
    file = (path or default_schema_dir()) / "examples" / f"{event_name}.json"
    if not file.exists():
        raise ConfigError(f"no example for {event_name}: {file} does not exist")
    data: dict[str, Any] = json.loads(file.read_text())
    return data
