"""The bus's murmur2 partitioner picks exactly the partition aiokafka's would."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from bus.publisher.partitions import murmur2 as bus_murmur2
from bus.publisher.partitions import partition_for


def test_murmur2_equals_aiokafkas_on_random_keys_of_every_length() -> None:
    rng = random.Random(20261201)
    for length in [*range(0, 70), 255, 256, 257, 300, 1000]:
        for _ in range(20):
            data = rng.randbytes(length)
            assert bus_murmur2(data) == murmur2(data), length


@pytest.mark.parametrize("partitions", [1, 3, 4, 12, 50])
def test_a_key_lands_where_aiokafkas_default_partitioner_puts_it(partitions: int) -> None:
    rng = random.Random(partitions)
    ids = list(range(partitions))
    for _ in range(500):
        key = rng.randbytes(64).hex().encode()  # the shape of a key pseudonym
        assert partition_for(key, ids) == DefaultPartitioner()(key, ids, ids)


def test_kafkas_own_reference_values() -> None:
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (as signed 32-bit ints there).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        bytes([ord("a"), ord("b"), ord("c")]): 479470107,
    }
    for data, signed in cases.items():
        assert bus_murmur2(data) == signed & 0xFFFFFFFF, data


@given(st.binary(max_size=200))
def test_murmur2_equals_aiokafkas_on_any_bytes(data: bytes) -> None:
    assert bus_murmur2(data) == murmur2(data)


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_any_key_gets_the_partition_the_producer_would_give_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
