"""make bench's worker protocol: cold start first, then warm runs on demand, so the parent can
interleave the serving paths; the ONNX path never imports torch; every path reports its first
greedy tokens for the fp32 comparison; peers are compared like for like, and a peer that cannot
run is skipped with its reason."""

import pytest

from bench.run import Worker


def test_a_worker_answers_once_then_times_each_requested_run(t5_artifacts):
    spec = {"kind": "onnx", "model": str(t5_artifacts["int8"]), "path": "t5-d", "threads": 1}
    spec |= {"prompt_ids": [5, 6, 7, 1], "new_tokens": 4, "agreement_prompts": [[5, 6, 1], [7, 1]]}
    spec |= {"agreement_tokens": 3}
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
    assert [len(tokens) for tokens in result["agreement_tokens"]] == [3, 3]


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


def test_peer_workers_decode_the_same_greedy_tokens_as_fp32(tmp_path, llama_artifacts):
    """onnxruntime-genai on the merged checkpoint and CTranslate2 each run in a worker and, on a
    tiny model where fp32 is decisive, return the merged model's own greedy tokens (genai fp32
    exactly; CTranslate2 at int8, at least its first tokens)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench import peers

    merged = tmp_path / "merged"
    model = AutoModelForCausalLM.from_pretrained(llama_artifacts["base"])
    model = PeftModel.from_pretrained(model, llama_artifacts["adapter"]).merge_and_unload().eval()
    model.save_pretrained(merged)
    AutoTokenizer.from_pretrained(llama_artifacts["base"]).save_pretrained(merged)
    prompt = [5, 9, 12, 7, 30, 4]
    with torch.no_grad():
        reference = model.generate(torch.tensor([prompt]), max_new_tokens=6, min_new_tokens=6, do_sample=False)
    expected = reference[0, len(prompt) :].tolist()
    common = {"threads": 1, "prompt_ids": prompt, "new_tokens": 6, "agreement_prompts": [prompt], "agreement_tokens": 6}
    genai_dir = peers.genai_merged(merged, tmp_path / "genai-fp32", "fp32")
    ct2_dir = peers.ct2_model(merged, tmp_path / "ct2")
    results = []
    for kind, model_dir in (("genai", genai_dir), ("ct2", ct2_dir)):
        worker = Worker({**common, "kind": kind, "model": str(model_dir), "path": f"tiny-{kind}"})
        worker.run_once()
        results.append(worker.finish())
    genai, ct2 = results
    assert genai["agreement_tokens"] == [expected]
    assert ct2["agreement_tokens"][0][:2] == expected[:2]
    assert not genai["torch_imported"] and not ct2["torch_imported"]


def test_agreement_counts_equal_positions_and_reports_median_and_worst():
    from bench.run import agreement

    reference = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]
    result = agreement([[1, 2, 3, 4], [1, 9, 3, 4], [9, 9, 9, 9]], reference)
    assert result == {"agreement": [4, 3, 0], "agreement_median": 3, "agreement_worst": 0}


def test_ours_is_judged_against_the_fastest_8_bit_peer_and_the_fastest_faithful_one():
    from bench.run import advisor_verdicts, best_peer

    def row(key, role, p50, agree, bits=8):
        return {"model": "m", "key": key, "label": key, "role": role, "p50_s": p50, "agreement_median": agree,
                "bits": bits}  # fmt: skip

    rows = [
        row("e", "ours", 1.0, 16),
        row("g", "peer", 0.9, 6),  # faster, but changes the answer
        row("h", "peer", 0.5, 1, bits=4),  # 4-bit: not like for like
        row("j", "peer", 1.5, 16),
        {"model": "m", "key": "i", "label": "i", "role": "peer", "skipped": "no compiler"},
    ]
    assert best_peer(rows, "m")["key"] == "g"
    assert best_peer(rows, "m", faithful=True)["key"] == "j"
    verdicts = advisor_verdicts(rows)
    assert list(verdicts.values()) == [False, True, True]
    alone = [row("e", "ours", 1.0, 14)]
    assert list(advisor_verdicts(alone).values()) == [None, None, False]  # not measured is not "met"


def test_llama_cpp_is_skipped_with_its_reason_when_it_cannot_be_built(tmp_path, monkeypatch):
    from bench import peers

    monkeypatch.setattr(peers.shutil, "which", lambda name: None)
    with pytest.raises(peers.PeerUnavailable, match="source-only on PyPI and this machine has no cmake"):
        peers.llama_python(tmp_path)
