"""Record batches go where single sends go: the same partition for the same key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from bus.publisher.batches import murmur2, partition_of


@given(st.binary(max_size=200))
def test_the_word_wise_murmur2_equals_aiokafkas(data: bytes) -> None:
    assert murmur2(data) & 0x7FFFFFFF == aiokafka_murmur2(data) & 0x7FFFFFFF


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_a_key_gets_the_partition_the_producer_would_give_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_values_of_the_java_client() -> None:
    # org.apache.kafka.common.utils.Utils.murmur2, as quoted by the Kafka clients' tests.
    assert murmur2(b"21") & 0x7FFFFFFF == aiokafka_murmur2(b"21") & 0x7FFFFFFF
    assert murmur2(b"") == aiokafka_murmur2(b"") & 0xFFFFFFFF
