"""The data-flow graph of deploy/catalog.yaml, flow states and measured rates (no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bus.contract.names import DataClassification
from bus.errors import ConfigError
from bus.ops.catalog import Catalog, load_catalog
from bus.ops.flow_measures import MIN_SPAN, count_rate, measure_flows
from bus.ops.flows import Flow, FlowState, flow_graph, flow_state

PENDUDUK = "spbe.dukcapil.penduduk.v1"
UPDATED = "id.go.spbe.dukcapil.PendudukUpdated.v1"
DIED = "id.go.spbe.dukcapil.KematianDicatat.v1"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(today=date(2026, 1, 1))[0]


def test_every_subscription_of_the_catalogue_is_a_flow_reading_its_projection(
    catalog: Catalog,
) -> None:
    graph = flow_graph(catalog)
    expected = {(s.subscriber, t) for s in catalog.subscriptions for t in s.topics}
    assert {(f.subscriber, f.topic) for f in graph.flows} == expected
    assert len(graph.flows) == len(expected) == 12
    for flow in graph.flows:
        sub = next(s for s in catalog.subscriptions if s.subscriber == flow.subscriber)
        assert flow.reads == f"{flow.topic}.for.{flow.subscriber}"  # all four are restricted
        assert flow.projected
        assert flow.classification is DataClassification.RESTRICTED
        assert flow.legal_basis == sub.legal_basis
        assert flow.expires == sub.expires
        assert flow.opd == sub.opd
        assert set(flow.event_types) == set(sub.allowed_fields)
        assert flow.key == f"{flow.subscriber}:{flow.topic}"


def test_a_flow_carries_only_the_event_types_its_agreement_allows(catalog: Catalog) -> None:
    graph = flow_graph(catalog)
    assert graph.flow(f"bkpsdm-penduduk:{PENDUDUK}").event_types == (DIED,)
    assert graph.flow(f"dinkes-penduduk:{PENDUDUK}").event_types == (UPDATED,)
    assert graph.flow(f"dinsos-penduduk:{PENDUDUK}").event_types == (UPDATED, DIED)
    with pytest.raises(KeyError):
        graph.flow(f"nobody:{PENDUDUK}")


def test_stewards_topics_and_api_clients_come_from_the_catalogue(catalog: Catalog) -> None:
    graph = flow_graph(catalog)
    assert [s.id for s in graph.stewards] == ["DISDUKCAPIL", "DPMPTSP", "DINKOPUKM", "BAPENDA"]
    assert graph.stewards[0].applications == ("siak",)
    assert graph.stewards[0].principals == ("disdukcapil-siak",)
    assert [t.name for t in graph.topics] == [t.name for t in catalog.topics]
    assert graph.topics[0].event_types == (UPDATED, DIED)
    clients = {c.client: c for c in graph.api_clients}
    assert set(clients) == {c.client for c in catalog.api_clients}
    siak = clients["disdukcapil-siak"]
    assert (siak.opd, siak.reads, siak.posts) == ("DISDUKCAPIL", (), (UPDATED, DIED))
    sipd = clients["bapenda-sipd"]
    assert sipd.reads == ("bapenda-penduduk", "bapenda-izin", "bapenda-umkm")
    assert sipd.posts == ("id.go.spbe.bapenda.PajakDaerahDibayar.v1",)


def _flow(expires: date = date(2027, 12, 31)) -> Flow:
    return Flow(
        topic=PENDUDUK,
        subscriber="dinsos-penduduk",
        opd="DINSOS",
        reads=f"{PENDUDUK}.for.dinsos-penduduk",
        event_types=(UPDATED,),
        classification=DataClassification.RESTRICTED,
        legal_basis="PKS 1/2025",
        expires=expires,
    )


TODAY = date(2027, 6, 1)


@pytest.mark.parametrize(
    ("expires", "lag", "dead", "state"),
    [
        (date(2027, 5, 31), 5000, 3, FlowState.EXPIRED),  # expired beats everything
        (date(2027, 5, 31), None, None, FlowState.EXPIRED),
        (date(2027, 6, 1), 0, 0, FlowState.OK),  # the last day of access is still open
        (date(2027, 12, 31), None, None, FlowState.UNMEASURED),
        (date(2027, 12, 31), None, 2, FlowState.UNMEASURED),
        (date(2027, 12, 31), 5000, 1, FlowState.DEAD_LETTERING),  # beats lagging
        (date(2027, 12, 31), 101, 0, FlowState.LAGGING),
        (date(2027, 12, 31), 100, None, FlowState.OK),  # at the threshold is not over it
    ],
)
def test_flow_state_precedence(
    expires: date, lag: int | None, dead: int | None, state: FlowState
) -> None:
    flow = _flow(expires)
    assert flow_state(flow, lag=lag, dead_letters=dead, today=TODAY, max_lag=100) is state


NOW = datetime(2027, 6, 1, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_rate_of_a_topic_older_than_the_window_divides_by_the_window() -> None:
    assert count_rate(70, first=NOW - timedelta(days=30), now=NOW, window=WEEK) == 10.0


def test_rate_of_a_young_topic_divides_by_its_age() -> None:
    assert count_rate(20, first=NOW - timedelta(days=2), now=NOW, window=WEEK) == 10.0


def test_rate_of_a_topic_minutes_old_divides_by_the_shortest_span() -> None:
    rate = count_rate(3, first=NOW - timedelta(minutes=2), now=NOW, window=WEEK)
    assert rate == pytest.approx(3 * timedelta(days=1) / MIN_SPAN)


def test_an_empty_topic_has_no_rate_and_a_quiet_one_has_zero() -> None:
    assert count_rate(0, first=None, now=NOW, window=WEEK) is None
    assert count_rate(0, first=NOW - timedelta(days=30), now=NOW, window=WEEK) == 0.0


async def test_measuring_over_no_window_is_refused_naming_it(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="window"):
        await measure_flows("127.0.0.1:1", catalog, window=timedelta(0))
