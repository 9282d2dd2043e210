"""What the registry holds, built by folding the registry topic's records in offset order.

Rules of the fold:

- A version key (``<subject>/v<n>``) is taken by its **earliest** record. Two registrars
  that raced for the same number both wrote it; the first in the log won, and the later
  record is ignored (the loser retries with the next number).
- Compaction keeps the **latest** record of a key, so a losing record, or a corrupt one,
  written after the winner would replace it once the log is compacted. The state remembers
  those keys (:meth:`RegistryState.shadowed`), so that a registrar writes the winner again.
- A settings key (``<subject>/_config``) is last-writer-wins, as compaction would have it.
- A tombstone (null value) deletes its key: a version is forgotten, a subject's mode goes
  back to the default. Compaction would forget the same.
- A record that cannot be read is skipped and listed in :attr:`RegistryState.skipped`;
  one bad record never stops a reader.

No IO happens here: the Kafka part feeds records to :meth:`RegistryState.apply`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bus.contract.compatibility import DEFAULT_MODE, CompatibilityMode, parse_mode
from bus.contract.schema import AvroSchema
from bus.registry.errors import RegistryError
from bus.registry.records import RecordKey, RegisteredSchema, SubjectConfig, parse_key

__all__ = ["FoldOutcome", "RegistryState", "Skipped"]


class FoldOutcome(StrEnum):
    """What applying one record did to the state."""

    ADDED = "added"  # a new version
    DUPLICATE = "duplicate"  # the same content again under a taken version key
    SHADOWED = "shadowed"  # other content under a taken version key: ignored
    CONFIG = "config"  # a subject's settings changed
    DELETED = "deleted"  # a tombstone removed a version or settings
    SKIPPED = "skipped"  # unreadable: see RegistryState.skipped


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record the fold could not read: where it lies and why."""

    offset: int
    reason: str


class RegistryState:
    """Every subject's versions and settings, as of the records applied so far."""

    def __init__(self, default_mode: CompatibilityMode | str = DEFAULT_MODE) -> None:
        self.default_mode = parse_mode(default_mode)
        #: The offset after the last record applied: where reading goes on.
        self.next_offset = 0
        self.skipped: list[Skipped] = []
        self._versions: dict[str, dict[int, RegisteredSchema]] = {}
        self._configs: dict[str, SubjectConfig] = {}
        self._by_fingerprint: dict[int, RegisteredSchema] = {}
        self._shadowed: set[tuple[str, int]] = set()

    @classmethod
    def folded(
        cls,
        records: Iterable[tuple[int, bytes | None, bytes | None]],
        default_mode: CompatibilityMode | str = DEFAULT_MODE,
    ) -> RegistryState:
        """Build a state from ``(offset, key, value)`` records in offset order."""
        state = cls(default_mode)
        for offset, key, value in records:
            state.apply(offset, key, value)
        return state

    # -- folding ---------------------------------------------------------------------------

    def apply(self, offset: int, key: bytes | None, value: bytes | None) -> FoldOutcome:
        """Fold one record in; records must come in increasing offset order."""
        if offset < self.next_offset:
            raise ValueError(f"record at offset {offset} comes after offset {self.next_offset - 1}")
        self.next_offset = offset + 1
        try:
            parsed = parse_key(key)
        except RegistryError as exc:
            return self._skip(offset, exc.message)
        if parsed.version is None:
            return self._apply_config(offset, parsed, key, value)
        return self._apply_version(offset, parsed.subject, parsed.version, key, value)

    def _apply_config(
        self, offset: int, parsed: RecordKey, key: bytes | None, value: bytes | None
    ) -> FoldOutcome:
        if value is None:
            self._configs.pop(parsed.subject, None)
            return FoldOutcome.DELETED
        try:
            config = SubjectConfig.from_record(key, value, offset=offset)
        except RegistryError as exc:
            return self._skip(offset, exc.message)
        self._configs[parsed.subject] = config
        return FoldOutcome.CONFIG

    def _apply_version(
        self, offset: int, subject: str, version: int, key: bytes | None, value: bytes | None
    ) -> FoldOutcome:
        versions = self._versions.setdefault(subject, {})
        winner = versions.get(version)
        if value is None:
            self._shadowed.discard((subject, version))
            if winner is not None:
                del versions[version]
                self._forget(winner)
            if not versions:
                del self._versions[subject]
            return FoldOutcome.DELETED
        try:
            record = RegisteredSchema.from_record(key, value, offset=offset)
        except RegistryError as exc:
            if winner is not None:
                self._shadowed.add((subject, version))
            if not versions:
                del self._versions[subject]
            return self._skip(offset, exc.message)
        if winner is None:
            versions[version] = record
            self._by_fingerprint.setdefault(record.fingerprint, record)
            return FoldOutcome.ADDED
        if record == winner:
            self._shadowed.discard((subject, version))
            return FoldOutcome.DUPLICATE
        self._shadowed.add((subject, version))
        return FoldOutcome.SHADOWED

    def _skip(self, offset: int, reason: str) -> FoldOutcome:
        self.skipped.append(Skipped(offset, reason))
        return FoldOutcome.SKIPPED

    def _forget(self, gone: RegisteredSchema) -> None:
        if self._by_fingerprint.get(gone.fingerprint) is not gone:
            return
        del self._by_fingerprint[gone.fingerprint]
        same = [
            record
            for versions in self._versions.values()
            for record in versions.values()
            if record.fingerprint == gone.fingerprint
        ]
        if same:
            self._by_fingerprint[gone.fingerprint] = min(same, key=lambda r: r.offset)

    # -- reading ---------------------------------------------------------------------------

    def subjects(self) -> list[str]:
        """Every subject with at least one version, sorted."""
        return sorted(self._versions)

    def versions(self, subject: str) -> list[RegisteredSchema]:
        """The subject's versions, oldest first; empty for an unknown subject."""
        versions = self._versions.get(subject, {})
        return [versions[number] for number in sorted(versions)]

    def version(self, subject: str, version: int) -> RegisteredSchema | None:
        return self._versions.get(subject, {}).get(version)

    def latest(self, subject: str) -> RegisteredSchema | None:
        versions = self._versions.get(subject)
        return versions[max(versions)] if versions else None

    def history(self, subject: str) -> list[AvroSchema]:
        """The subject's schemas, oldest first: what a new version is checked against."""
        return [record.schema for record in self.versions(subject)]

    def next_version(self, subject: str) -> int:
        latest = self.latest(subject)
        return 1 if latest is None else latest.version + 1

    def find(self, subject: str, fingerprint: int) -> RegisteredSchema | None:
        """The subject's earliest version with this fingerprint, or ``None``."""
        for record in self.versions(subject):
            if record.fingerprint == fingerprint:
                return record
        return None

    def registered(self, fingerprint: int) -> RegisteredSchema | None:
        """The first registration, in any subject, of a schema with this fingerprint."""
        return self._by_fingerprint.get(fingerprint)

    def schema_for(self, fingerprint: int) -> AvroSchema | None:
        record = self._by_fingerprint.get(fingerprint)
        return None if record is None else record.schema

    def config_of(self, subject: str) -> SubjectConfig | None:
        """The subject's settings record, or ``None`` when its mode is the default."""
        return self._configs.get(subject)

    def mode_of(self, subject: str) -> CompatibilityMode:
        """The subject's compatibility mode: its settings, else the default mode."""
        config = self._configs.get(subject)
        return self.default_mode if config is None else config.compatibility

    def shadowed(self, subject: str) -> list[RegisteredSchema]:
        """The subject's versions whose key was last written with other content.

        Compaction would keep that other content; writing the winner again prevents it.
        """
        found = (self.version(subject, number) for s, number in self._shadowed if s == subject)
        return sorted((record for record in found if record is not None), key=lambda r: r.version)
