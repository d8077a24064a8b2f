"""The journey latency bench runs small and finds no lost or duplicated message."""

from tessera.bench.journeys import run


def test_a_short_bench_loses_and_duplicates_nothing():
    result = run(rate=40, seconds=2, interval=1, batch=10, customers=50)
    assert result["events_accepted"] == 80
    assert result["messages_received"] == 80
    assert result["lost"] == 0 and result["duplicates"] == 0
    assert 0 < result["latency_p50_s"] <= result["latency_p95_s"] < 10
