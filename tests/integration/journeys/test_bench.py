"""The journey latency bench runs small and finds no lost or duplicated message."""

from tessera.bench.journeys import run


def test_a_short_bench_loses_and_duplicates_nothing():
    result = run(rate=40, seconds=2, interval=1, batch=10, customers=50)
    assert result["events_accepted"] == 80
    assert result["messages_received"] == 80
    assert result["lost"] == 0 and result["duplicates"] == 0
    assert 0 < result["latency_p50_s"] <= result["latency_p95_s"] < 10


def test_the_job_run_during_the_load_starts_in_the_middle_and_gets_its_own_figures():
    import time

    calls = []

    def job() -> dict:
        calls.append(time.time())
        time.sleep(1.0)
        return {"status": "ok"}

    result = run(rate=40, seconds=4, interval=1, batch=10, customers=50, during=job)
    assert len(calls) == 1
    assert result["lost"] == 0 and result["duplicates"] == 0
    during = result["during_job"]
    assert during["status"] == "ok"
    assert 1.5 <= during["started_after_s"] <= 3.0
    assert during["wall_seconds"] >= 1.0 and during["overlap_s"] >= 0.9
    # about 40 events/s for the job's second
    assert 20 <= during["messages"] <= 80
    assert 0 < during["latency_p95_s"] < 10


def test_without_a_job_there_are_no_job_figures():
    result = run(rate=40, seconds=1, interval=1, batch=10, customers=50)
    assert result["during_job"] is None
