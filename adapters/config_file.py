"""Adapter config files: YAML or TOML a person edits, validated with pydantic once.

``${NAME}`` in a string value is replaced by the environment variable ``NAME`` (and
``${NAME:-default}`` falls back to ``default``), so secrets and database URLs stay out of
the file. Every mistake becomes one :class:`~bus.errors.ConfigError` that lists each
problem with its key path, what is wrong, and a fix (``did you mean 'topics'?``).

The interpolation is a few lines of ``re`` rather than a templating dependency: config
files need exactly this one substitution, and nothing that could execute code.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, Self, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretBytes, ValidationError

from bus.errors import ConfigError
from bus.ops.catalog import Catalog, default_catalog_path, load_catalog

__all__ = [
    "FromFile",
    "describe_errors",
    "interpolate",
    "load_config",
    "read_catalogue",
    "read_config_data",
    "read_secret",
    "require_files",
]

M = TypeVar("M", bound=BaseModel)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, *, path: str = "", env: dict[str, str] | None = None) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of ``value``."""
    environ = os.environ if env is None else env
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{path or 'value'}: environment variable {name} is not set",
                fix=f"export {name}=... or write ${{{name}:-default}} in the file",
            )

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {
            k: interpolate(v, path=f"{path}.{k}" if path else str(k), env=env)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, path=f"{path}[{i}]", env=env) for i, v in enumerate(value)]
    return value


def read_config_data(path: Path) -> dict[str, Any]:
    """The file's content as a dict (YAML for .yaml/.yml, TOML for .toml), interpolated."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(
                f"{path}: unknown config format {path.suffix!r}",
                fix="name the file .yaml, .yml or .toml",
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    result: dict[str, Any] = interpolate(data)
    return result


def _model_in(annotation: Any) -> Any:
    """The model an optional section holds (``Section | None`` -> ``Section``), else as is."""
    if get_origin(annotation) in (Union, UnionType):
        models = [
            a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if len(models) == 1:
            return models[0]
    return annotation


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names valid at ``loc`` inside ``model`` (for 'did you mean')."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _describe(model: type[BaseModel], error: Any) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = (
            f"; did you mean '{close[0]}'?"
            if close
            else (f"; known keys here: {', '.join(sorted(known))}" if known else "")
        )
        return f"{key}: unknown key{hint}"
    if kind == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {error['msg']}"


def describe_errors(model: type[BaseModel], exc: ValidationError) -> str:
    """One line per problem: key path, what is wrong, and a suggestion where one exists."""
    return "\n".join(f"  - {_describe(model, e)}" for e in exc.errors())


def load_config(model: type[M], path: Path) -> M:
    """Read ``path`` and validate it as ``model``; one ConfigError lists every problem."""
    data = read_config_data(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(model, exc)
        count = exc.error_count()
        raise ConfigError(
            f"{path} has {count} problem{'s' if count != 1 else ''}:\n{problems}",
            fix="correct the keys above; README.md documents every adapter's keys",
        ) from None


class FromFile:
    """Mixed into an adapter's config model: ``Config.from_file(path)``."""

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """Load a YAML or TOML file (``${ENV}`` values allowed); raise ConfigError on mistakes."""
        if not issubclass(cls, BaseModel):
            raise TypeError(f"{cls.__name__} mixes in FromFile but is not a pydantic model")
        loaded: Self = load_config(cls, Path(path))
        return loaded


#: The command a "fix:" gives for making a secret (a command, not a secret).
GENERATE_SECRET = "python -c 'import secrets; print(secrets.token_hex(32))'"  # noqa: S105


def read_secret(
    name: str,
    value: SecretBytes | None,
    path: Path | None,
    *,
    env_var: str,
    min_bytes: int,
) -> SecretBytes:
    """The secret of key ``name``, given inline or in the file of ``<name>_file``, checked.

    Raises ``ValueError`` (inside a model validator it becomes the key's problem) when both
    or neither are given, the file cannot be read, or the secret is shorter than
    ``min_bytes``; the message never repeats the secret. Surrounding whitespace of a file
    is dropped.
    """
    if value is not None and path is not None:
        raise ValueError(
            f"set either {name} or {name}_file, not both; fix: keep one (the file keeps "
            "the secret out of the config and the environment)"
        )
    if value is None and path is None:
        raise ValueError(
            f"{name} is missing: set {name} (e.g. {name}: ${{{env_var}}}) or {name}_file; "
            f"fix: generate one with {GENERATE_SECRET}"
        )
    if path is not None:
        try:
            value = SecretBytes(path.expanduser().read_bytes().strip())
        except OSError as exc:
            raise ValueError(
                f"{name}_file {path} cannot be read ({exc.strerror}); fix: give the path "
                "of the file holding the secret"
            ) from None
    assert value is not None
    size = len(value.get_secret_value())
    if size < min_bytes:
        where = f"{name}_file" if path is not None else name
        raise ValueError(
            f"{where}: the secret is {size} bytes; at least {min_bytes} are needed; "
            f"fix: generate one with {GENERATE_SECRET}"
        )
    return value


def read_catalogue(path: Path | None) -> tuple[Path, Catalog]:
    """The catalogue a config's ``catalog`` key names (default: deploy/catalog.yaml), read
    and checked, with its path; raises ``ValueError`` (inside a model validator it becomes
    the key's problem) when it is no file or breaks a rule of the catalogue."""
    where = path if path is not None else default_catalog_path()
    if not where.is_file():
        raise ValueError(
            f"catalog: {where} is not a file; fix: give the path of the catalogue "
            "(deploy/catalog.yaml)"
        )
    try:
        catalog, _ = load_catalog(where)
    except ConfigError as exc:
        raise ValueError(f"catalog: {exc.message}") from None
    return where, catalog


def require_files(owner: object, names: tuple[str, ...], *, fix: str) -> None:
    """Each path attribute of ``owner`` in ``names`` is an existing file; else
    ``ValueError`` naming the key, with ``fix``."""
    for name in names:
        path: Path = getattr(owner, name)
        if not path.is_file():
            raise ValueError(f"{name}: {path} is not a file; fix: {fix}")
