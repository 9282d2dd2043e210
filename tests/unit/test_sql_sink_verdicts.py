"""A batch's verdicts worked out in Python: the one-by-one rules, per key in batch order."""

from __future__ import annotations

from adapters.sinks.sql import MappingAction
from adapters.sinks.sql.rows import Change
from adapters.sinks.sql.verdicts import BatchPlan, Result, Verdict
from bus.contract.envelope import DataClassification, Envelope
from bus.delivery import Delivery
from tests.support.events import izin

SOURCE = "ID/PEMDA-3273/DPMPTSP/sicantik"


def change(
    index: int,
    key: str,
    sequence: int | None,
    *,
    action: MappingAction = MappingAction.UPSERT,
    event_id: str | None = None,
    **values: object,
) -> Change:
    extra = {"id": event_id} if event_id else {}
    envelope = Envelope(
        source=SOURCE,
        type="id.go.spbe.dpmptsp.IzinDiterbitkan.v1",
        steward="DPMPTSP",
        partitionkey=key,
        dataclassification=DataClassification.INTERNAL,
        sequence=sequence,
        **extra,
    )
    delivery = Delivery(
        event=izin(1),
        envelope=envelope,
        topic="spbe.dpmptsp.izin.v1",
        partition=0,
        offset=index,
        key=key.encode(),
        attempt=1,
    )
    return Change(index=index, delivery=delivery, action=action, key=key, values=values)


def test_each_change_gets_the_verdict_of_applying_the_batch_one_by_one() -> None:
    done = change(0, "a", 1)
    new = change(3, "c", 1)
    changes = [
        change(0, "a", 3, status="LAMA"),  # the row holds version 5
        change(1, "a", 6, status="BARU"),
        change(2, "a", 6, status="SAMA"),
        new,
        change(4, "c", 3, nama="C3"),
        change(5, "c", 2, nama="C2"),
        change(6, "c", 1, event_id=new.delivery.envelope.id),  # delivered twice
        change(7, "d", 4, action=MappingAction.UPDATE_ONLY, status="DICABUT"),
        change(8, "n", None, status="TANPA"),  # a row with no version
        change(9, "n", 2, status="DUA"),
        change(10, "b", 1, event_id=done.delivery.envelope.id),
        change(11, "e", None, nama="E"),
        change(12, "e", None, status="E2"),
    ]
    plan = BatchPlan("versi", [done.dedupe_key])
    plan.found("a", 5)
    plan.found("n", None)
    results = [plan.add(c)[0] for c in changes]
    assert results == [
        Result(Verdict.STALE, 5),
        Result(Verdict.UPDATED, 5),
        Result(Verdict.STALE, 6),
        Result(Verdict.INSERTED),
        Result(Verdict.UPDATED, 1),
        Result(Verdict.STALE, 3),
        Result(Verdict.DUPLICATE),
        Result(Verdict.ABSENT),
        Result(Verdict.UPDATED, None),
        Result(Verdict.UPDATED, None),
        Result(Verdict.DUPLICATE),
        Result(Verdict.INSERTED),
        Result(Verdict.UPDATED, None),
    ]
    assert [c.index for c in plan.records] == [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12]
    writes = {w.key: w for w in plan.row_writes()}
    assert set(writes) == {"a", "c", "n", "e"}, "stale, absent and duplicate write nothing"
    assert (writes["a"].insert, writes["a"].values) == (False, {"status": "BARU", "versi": 6})
    assert (writes["c"].insert, writes["c"].values) == (True, {"versi": 3, "nama": "C3"})
    assert [c.index for c in writes["c"].changes] == [3, 4]
    assert writes["n"].values == {"status": "DUA", "versi": 2}
    assert writes["e"].values == {"versi": None, "nama": "E", "status": "E2"}


def test_a_change_adds_its_own_write_step_by_step() -> None:
    plan = BatchPlan("versi", [])
    assert not plan.knows("a")
    plan.found("a", None, present=False)
    assert plan.knows("a")
    result, write = plan.add(change(0, "a", 1, nama="A"))
    assert result == Result(Verdict.INSERTED)
    assert write is not None
    assert (write.insert, write.values) == (True, {"versi": 1, "nama": "A"})
    result, write = plan.add(change(1, "a", None, status="S"))
    assert result == Result(Verdict.UPDATED, 1)
    assert write is not None
    assert (write.insert, write.values) == (False, {"status": "S"}), "the version is left as is"
    assert plan.add(change(2, "a", 1))[1] is None
