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
