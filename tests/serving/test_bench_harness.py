"""make bench's worker protocol: cold start first, then warm runs on demand, so the parent can
interleave the serving paths; the ONNX path never imports torch."""

import pytest

from bench.run import Worker


def test_a_worker_answers_once_then_times_each_requested_run(t5_artifacts):
    spec = {"kind": "onnx", "model": str(t5_artifacts["int8"]), "path": "t5-d", "threads": 1}
    spec |= {"prompt_ids": [5, 6, 7, 1], "new_tokens": 4}
    worker = Worker(spec)
    assert worker.start["cold_start_s"] >= worker.start["in_process_s"] > 0
    timings = [worker.run_once() for _ in range(3)]
    assert all(t > 0 for t in timings)
    result = worker.finish()
    assert result["runs"] == 3
    assert result["p50_s"] == pytest.approx(sorted(timings)[1], abs=1e-4)
    assert result["generated_tokens"] == 4
    assert result["torch_imported"] is False
    assert result["peak_rss_mb"] > 0
    assert result["cold_start_s"] == worker.start["cold_start_s"]  # the report keeps both start-up figures


def test_a_worker_that_cannot_start_says_which_path_and_why(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)worker for broken-d exited.*no manifest\.json"):
        Worker({"kind": "onnx", "model": str(tmp_path), "path": "broken-d", "threads": 1, "prompt_ids": [1],
                "new_tokens": 1})  # fmt: skip


def test_the_streaming_bench_times_the_first_token_before_the_whole_answer(t5_artifacts, tmp_path):
    from bench.stream import advisor_stream, markdown, plot, route_stream

    advisor = advisor_stream("t5", t5_artifacts["int8"], [5, 6, 7, 1], 8, runs=3)
    route = route_stream(runs=3, pace_s=0.01)
    for row in (advisor, route):
        assert 0 < row["ttft"]["p50_ms"] <= row["ttft"]["p95_ms"]
        assert row["ttft"]["p50_ms"] < row["sync"]["p50_ms"]  # the first token comes before the whole answer
    assert route["ttft"]["p50_ms"] < route["stream_whole"]["p50_ms"]
    table = "\n".join(markdown([advisor, route]))
    assert "time to first token p50" in table and "stream route" in table
    plot([advisor, route], tmp_path / "streaming.png")
    assert (tmp_path / "streaming.png").stat().st_size > 1000
