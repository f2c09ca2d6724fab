"""The bench's pure parts: wrk's output, medians, ratios, the table, the summary."""

from __future__ import annotations

import pytest

from tools.bench import report, wrk
from tools.bench.cli import parse_metric, print_report, summarize

WRK_STDOUT = """Running 10s test @ http://127.0.0.1:8200/api/v1/payouts/
  2 threads and 8 connections
WRK_JSON {"requests":1200,"duration_us":10000000,"bytes":99,"connect":0,"read":0,\
"write":0,"status":200,"timeout":3,"p50_us":20000,"p90_us":30000,"p99_us":41500,\
"max_us":90000,"mean_us":21000.5}
"""


def test_wrk_output_counts_only_successful_answers_as_throughput() -> None:
    # given a run with 200 non-2xx answers among 1200
    # when
    parsed = wrk.parse_output(WRK_STDOUT)
    # then
    assert parsed["ok"] == 1000
    assert parsed["rps"] == 100.0
    assert parsed["errors"] == {"status": 200, "timeout": 3}
    assert parsed["p99_ms"] == 41.5


def test_wrk_output_without_the_done_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="WRK_JSON"):
        wrk.parse_output("unable to connect to 127.0.0.1:8200 Connection refused\n")


def test_the_lua_script_quotes_headers_and_bodies_as_lua_strings() -> None:
    load = wrk.Load("POST", ("/p/",), {"X-CSRFToken": 'a"b'}, '{"d": "{n}"}')
    script = wrk.lua_script(load, limit_per_thread=5)
    assert '["X-CSRFToken"] = "a\\"b"' in script
    assert 'local body_template = "{\\"d\\": \\"{n}\\"}"' in script
    assert "local limit = 5" in script


def test_median_ignores_rounds_that_measured_nothing() -> None:
    assert report.median([3.0, None, 1.0, 2.0]) == 2.0
    assert report.median([None]) is None


def test_ratio_is_service_over_baseline_and_none_without_a_baseline() -> None:
    assert report.ratio(50.0, 200.0) == 0.25
    assert report.ratio(50.0, 0.0) is None
    assert report.ratio(None, 10.0) is None


def test_the_table_shows_both_medians_and_their_ratio() -> None:
    fig = report.figure("create req/s", "", [100.0, 300.0, 200.0], [50.0, 70.0, 60.0])
    lines = report.table([fig]).splitlines()
    assert lines[0].split() == ["figure", "baseline", "service", "ratio"]
    assert lines[2].split()[-3:] == ["200", "60.00", "0.30x"]


def test_a_service_only_figure_has_no_ratio() -> None:
    fig = report.figure("lag p99", "s", None, [0.5])
    assert report.table([fig]).splitlines()[2].split()[-4:] == ["-", "0.50", "s", "-"]


def test_parse_metric_reads_an_unlabelled_sample() -> None:
    text = "# HELP projection_lag_seconds x\nprojection_lag_seconds 1.25\npayouts 3\n"
    assert parse_metric(text, "projection_lag_seconds") == 1.25
    assert parse_metric(text, "missing") is None


def _wrk(rps: float, p99: float) -> dict[str, float]:
    return {"rps": rps, "p99_ms": p99}


def test_summary_gives_the_top_level_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    # given two rounds of each figure
    rounds = {
        "create_8": {"baseline": [_wrk(300, 30)] * 2, "service": [_wrk(150, 60)] * 2},
        "create_16": {"baseline": [_wrk(400, 40)] * 2, "service": [_wrk(100, 80)] * 2},
        "list_8": {"baseline": [_wrk(60, 200)] * 2, "service": [_wrk(120, 50)] * 2},
        "list_1": {"baseline": [_wrk(20, 60)] * 2, "service": [_wrk(40, 20)] * 2},
        "detail_8": {"baseline": [_wrk(400, 20)] * 2, "service": [_wrk(200, 40)] * 2},
        "e2e": {
            "baseline": [{"payouts_per_s": 100.0, "p50_ms": 20, "p99_ms": 50}] * 2,
            "service": [{"payouts_per_s": 40.0, "p50_ms": 900, "p99_ms": 2000}] * 2,
        },
        "e2e_slow_gateway": [{"payouts_per_s": 10.0, "p99_ms": 9000}] * 2,
        "projection_lag": [{"p99_s": 1.0}, {"p99_s": 2.0}],
    }
    results = {
        "rounds": rounds,
        "config": {
            "create_connections": [8, 16],
            "connections": 8,
            "list_rows": 1_000_000,
            "slow_gateway_ms": 100.0,
            "gunicorn_workers": 2,
            "gunicorn_threads": 8,
            "celery_concurrency": 4,
            "baseline_web_workers": 4,
            "baseline_worker_concurrency": 2,
            "rounds": 2,
            "duration": 10.0,
        },
        "started_at": "now",
        "machine": {"cores": 2, "cpu_model": "x"},
        "rebuild": {"events_per_s": 5000.0},
        "ceilings": {"appends_1_writers": [900.0], "decoded_reads": []},
    }
    # when
    summarize(results)
    # then
    assert results["create_ratio"] == 0.5
    assert results["create_16_ratio"] == 0.25
    assert results["list_1m_ratio"] == 2.0
    assert results["detail_ratio"] == 0.5
    assert results["e2e_ratio"] == 0.4
    assert results["e2e_latency_100ms_share"] == 0.25
    assert results["rebuild_events_per_s"] == 5000.0
    assert results["projection_lag_p99_s"] == 1.5
    print_report(results)
    assert "create_ratio = 0.5" in capsys.readouterr().out
