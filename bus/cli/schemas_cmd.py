"""``spbe-bus schemas list | show | register | check | mode``: the registry from a shell.

``check`` compares the schema directory with a baseline without writing anything: the
registry (default), another directory, or the same directory at a git ref (``main``,
``HEAD~1``), read with ``git ls-tree`` and ``git show``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus.cli.connection_args import (
    DEFAULT_BOOTSTRAP,
    ENV_BOOTSTRAP,
    add_credentials_option,
    connection_of,
)
from bus.contract.compatibility import CompatibilityMode, incompatibilities, parse_mode
from bus.contract.schema import AvroSchema, load_schema_dir
from bus.contract.standard import default_schema_dir
from bus.errors import ConfigError, IncompatibleSchemaError
from bus.registry import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_TOPIC,
    RegisteredSchema,
    RegistryError,
    SchemaRegistry,
    SchemasRefusedError,
)
from bus.registry.records import subject_of

__all__ = ["add_schemas_commands"]

_GIT_TIMEOUT_S = 30.0
#: Docs and spbe.* attributes are not part of the fingerprint: say when only they changed.
_ATTRIBUTES_DIFFER = "only docs or spbe.* attributes differ"

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_schemas_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = sub.add_parser("schemas", help="the schema registry kept in Kafka")
    ssub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="COMMAND")

    def with_registry(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--bootstrap",
            default=None,
            metavar="HOST:PORT",
            help=f"Kafka to use (default: ${ENV_BOOTSTRAP}, else {DEFAULT_BOOTSTRAP})",
        )
        add_credentials_option(p)
        p.add_argument(
            "--registry-topic",
            default=DEFAULT_TOPIC,
            metavar="TOPIC",
            help=f"the compacted topic holding the registry (default {DEFAULT_TOPIC})",
        )
        p.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT_S,
            help=f"seconds to wait for Kafka in one step (default {DEFAULT_TIMEOUT_S:g})",
        )
        return p

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--schemas",
            type=Path,
            default=None,
            metavar="DIR",
            help=f"folder of .avsc files (default: $SPBE_SCHEMAS_DIR or {default_schema_dir()})",
        )
        return p

    listing = with_registry(ssub.add_parser("list", help="every subject and its latest version"))
    listing.set_defaults(handler=_sync(_list))

    show = with_registry(ssub.add_parser("show", help="one version's schema and metadata"))
    show.add_argument("subject", metavar="SUBJECT", help="the event type, e.g. id.go.spbe....v1")
    show.add_argument("--version", type=int, default=None, help="default: the latest")
    show.set_defaults(handler=_sync(_show))

    register = with_dir(with_registry(ssub.add_parser("register", help="register a directory")))
    register.add_argument(
        "--principal", default=None, help="who registers (default: $SPBE_PRINCIPAL or OS user)"
    )
    register.set_defaults(handler=_sync(_register))

    check = with_dir(
        with_registry(ssub.add_parser("check", help="check a directory; writes nothing"))
    )
    check.add_argument(
        "--baseline",
        default=None,
        metavar="DIR_OR_GIT_REF",
        help="compare with this directory, or with the schema directory at this git ref "
        "(default: the registry)",
    )
    check.add_argument(
        "--mode",
        default=None,
        help="compatibility mode (default: each subject's mode in the registry, BACKWARD "
        "against a directory or git ref)",
    )
    check.set_defaults(handler=_check)

    mode = with_registry(ssub.add_parser("mode", help="show or set a subject's compatibility"))
    mode.add_argument("subject", metavar="SUBJECT")
    mode.add_argument("mode", nargs="?", default=None, metavar="MODE", help="the mode to set")
    mode.add_argument("--principal", default=None, help="who changes it")
    mode.set_defaults(handler=_sync(_mode))


def _sync(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _quiet_client_logs(args)
        return asyncio.run(handler(args))

    return run


def _quiet_client_logs(args: argparse.Namespace) -> None:
    if str(getattr(args, "log_level", "WARNING")).upper() != "DEBUG":
        # The client logs every refused connection; the error we raise says it once, clearly.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _registry(args: argparse.Namespace) -> SchemaRegistry:
    return SchemaRegistry(
        connection_of(args),
        topic=args.registry_topic,
        principal=getattr(args, "principal", None),
        timeout_s=args.timeout,
    )


# -- list / show / mode --------------------------------------------------------------------


async def _list(args: argparse.Namespace) -> int:
    async with _registry(args) as registry:
        subjects = registry.subjects()
        if not subjects:
            print(
                f"no schemas registered in {registry.topic} on {registry.bootstrap_servers} "
                "(register them with 'spbe-bus schemas register')"
            )
            return 0
        rows = [("SUBJECT", "VERSION", "FINGERPRINT", "MODE", "PRINCIPAL")]
        for subject in subjects:
            latest = registry.latest(subject)
            if latest is not None:
                rows.append(
                    (
                        subject,
                        str(latest.version),
                        latest.fingerprint_hex,
                        registry.mode_of(subject).value,
                        latest.principal,
                    )
                )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]))
    return 0


async def _show(args: argparse.Namespace) -> int:
    async with _registry(args) as registry:
        versions = registry.versions(args.subject)
        if not versions:
            raise RegistryError(
                f"subject {args.subject} has no registered schema in {registry.topic}",
                fix="see the registered subjects with 'spbe-bus schemas list'",
            )
        if args.version is None:
            chosen: RegisteredSchema | None = versions[-1]
        else:
            chosen = registry.version(args.subject, args.version)
        if chosen is None:
            known = ", ".join(str(v.version) for v in versions)
            raise RegistryError(
                f"subject {args.subject} has no version {args.version} (it has {known})",
                fix="pick one of the listed versions, or leave --version out for the latest",
            )
        mode = registry.mode_of(args.subject)
    print(f"subject:        {chosen.subject}")
    print(f"version:        {chosen.version} (latest: {versions[-1].version})")
    print(f"fingerprint:    {chosen.fingerprint_hex}")
    print(f"compatibility:  {chosen.compatibility.value} when registered, {mode.value} now")
    print(f"principal:      {chosen.principal}")
    print(f"registered at:  {chosen.registered_at.isoformat().replace('+00:00', 'Z')}")
    print("schema:")
    print(json.dumps(chosen.schema.raw, indent=2, ensure_ascii=False))
    return 0


async def _mode(args: argparse.Namespace) -> int:
    async with _registry(args) as registry:
        if args.mode is None:
            config = registry.config_of(args.subject)
            origin = "default" if config is None else f"set by {config.principal}"
            print(f"{args.subject}: {registry.mode_of(args.subject).value} ({origin})")
            return 0
        config = await registry.set_mode(args.subject, args.mode)
    print(f"{args.subject}: {config.compatibility.value} (set by {config.principal})")
    return 0


# -- register ------------------------------------------------------------------------------


async def _register(args: argparse.Namespace) -> int:
    directory: Path = args.schemas or default_schema_dir()
    schemas = load_schema_dir(directory)
    if not schemas:
        raise ConfigError(f"{directory} holds no .avsc file", fix="point --schemas at the folder")
    registered: list[RegisteredSchema] = []
    refused: list[IncompatibleSchemaError] = []
    async with _registry(args) as registry:
        for name in sorted(schemas):
            schema = schemas[name]
            subject = subject_of(schema)
            known = registry.find(subject, schema.fingerprint)
            try:
                record = await registry.register(schema, subject=subject)
            except IncompatibleSchemaError as exc:
                refused.append(exc)
                print(f"{'refused':<10} {subject}")
                continue
            registered.append(record)
            status = "unchanged" if known is not None else "new"
            if record.schema != schema:
                note = f" ({_ATTRIBUTES_DIFFER}; the registry keeps those of v{record.version})"
            else:
                note = ""
            print(f"{status:<10} {subject} v{record.version} ({record.fingerprint_hex}){note}")
    if refused:
        raise SchemasRefusedError(registered, refused)
    return 0


# -- check ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Baseline:
    """What one subject is checked against: its earlier schemas, oldest first, and a mode."""

    history: Sequence[AvroSchema]
    mode: CompatibilityMode


def _check(args: argparse.Namespace) -> int:
    directory: Path = args.schemas or default_schema_dir()
    current = _by_subject(load_schema_dir(directory))
    if not current:
        raise ConfigError(f"{directory} holds no .avsc file", fix="point --schemas at the folder")
    forced = None if args.mode is None else parse_mode(args.mode)
    missing: list[str] = []
    if args.baseline is None:
        _quiet_client_logs(args)
        baselines, described = asyncio.run(_registry_baselines(args, current, forced))
    else:
        if Path(args.baseline).is_dir():
            old = _by_subject(load_schema_dir(args.baseline))
            described = f"directory {args.baseline}"
        else:
            old = _by_subject(_schemas_at_ref(directory, args.baseline))
            described = f"{directory} at git ref {args.baseline}"
        mode = forced or CompatibilityMode.BACKWARD
        baselines = {subject: _Baseline([schema], mode) for subject, schema in old.items()}
        missing = sorted(set(old) - set(current))
    failures: list[IncompatibleSchemaError] = []
    for subject, schema in current.items():
        baseline = baselines.get(subject, _Baseline([], CompatibilityMode.NONE))
        if not baseline.history:
            print(f"{'new':<18} {subject}")
        elif same := [old for old in baseline.history if old.fingerprint == schema.fingerprint]:
            note = "" if schema in same else f" ({_ATTRIBUTES_DIFFER} from the baseline)"
            print(f"{'unchanged':<18} {subject}{note}")
        elif reasons := incompatibilities(schema, baseline.history, baseline.mode):
            failures.append(IncompatibleSchemaError(subject, baseline.mode.value, reasons))
            print(f"{'INCOMPATIBLE':<18} {subject} ({baseline.mode.value})")
        else:
            print(f"{'compatible change':<18} {subject} ({baseline.mode.value})")
    for subject in missing:
        print(f"{'not in directory':<18} {subject} (only in the baseline)")
    if failures:
        print(file=sys.stderr)
        for failure in failures:
            print(f"error: {failure}", file=sys.stderr)
        verb = "is" if len(failures) == 1 else "are"
        print(
            f"{len(failures)} of {len(current)} schemas {verb} not compatible with {described}",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(current)} schemas are compatible with {described}")
    return 0


async def _registry_baselines(
    args: argparse.Namespace,
    current: Mapping[str, AvroSchema],
    forced: CompatibilityMode | None,
) -> tuple[dict[str, _Baseline], str]:
    """Each subject's registered history and mode (or the forced mode)."""
    baselines: dict[str, _Baseline] = {}
    async with _registry(args) as registry:
        for subject in current:
            history = [v.schema for v in registry.versions(subject)]
            baselines[subject] = _Baseline(history, forced or registry.mode_of(subject))
    return baselines, f"the registry ({registry.topic} on {registry.bootstrap_servers})"


def _by_subject(schemas: Mapping[str, AvroSchema]) -> dict[str, AvroSchema]:
    """Key schemas by subject: a major version bump is another subject, not a change."""
    return {subject_of(schema): schema for _, schema in sorted(schemas.items())}


def _schemas_at_ref(directory: Path, ref: str) -> dict[str, AvroSchema]:
    """The ``.avsc`` files of ``directory`` as they were at git ``ref``, keyed by record name."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise ConfigError(f"schema directory {directory} does not exist")
    top = Path(_git(directory, ref, "rev-parse", "--show-toplevel").strip()).resolve()
    relative = directory.relative_to(top).as_posix()
    _git(top, ref, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    listed = _git(top, ref, "ls-tree", "--name-only", "-z", ref, "--", f"{relative}/")
    parent = "" if relative == "." else relative
    schemas: dict[str, AvroSchema] = {}
    for path in sorted(filter(None, listed.split("\0"))):
        if not path.endswith(".avsc") or path.rpartition("/")[0] != parent:
            continue
        text = _git(top, ref, "show", f"{ref}:{path}")
        try:
            schema = AvroSchema.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{ref}:{path}: {exc.message}", fix=exc.fix) from None
        if schema.record_name in schemas:
            raise ConfigError(f"{ref}:{path}: record {schema.record_name} is defined twice")
        schemas[schema.record_name] = schema
    return schemas


def _git(cwd: Path, ref: str, *args: str) -> str:
    where = f"--baseline {ref}"
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: git is not installed, so a git ref cannot be read",
            fix="install git, or give a directory as the baseline",
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{where}: git {args[0]} took longer than {_GIT_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        detail = done.stderr.strip() or f"git {args[0]} exited with {done.returncode}"
        if args[0] == "rev-parse" and "--verify" in args:
            detail = f"{ref} is not a commit in {cwd}"
        raise ConfigError(
            f"{where} is neither a directory nor a git ref usable here: {detail}",
            fix="give an existing directory, or a branch, tag or commit of the repository "
            "that holds the schema directory",
        )
    return done.stdout
