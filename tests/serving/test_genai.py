"""The causal advisor on onnxruntime-genai: the runtime adapter is applied exactly, adapters share
one base, the base is built once, what cannot be served exactly is refused, and on real
SmolLM2-135M weights the shipped int8 artifact agrees with fp32 PyTorch."""

import json
import shutil

import numpy as np
import pytest
import torch

from serving import genai
from serving.artifacts import Artifact, verify
from serving.generator import Generator
from tests.serving.conftest import greedy, manifest, merged
from training_jobs.common.errors import JobSetupError


def next_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].numpy()


def test_base_without_the_adapter_is_exactly_the_base_model(llama_artifacts, advisor_texts):
    """The LoRA inputs' empty defaults make a rank-0 LoRA: with no adapter active the graph is the
    base model, and with the adapter active it is the merged model (logits within fp32 noise)."""
    from transformers import AutoModelForCausalLM

    artifact = verify(llama_artifacts["fp32"])
    bare = Artifact(artifact.path, {**artifact.manifest, "adapter_file": None})
    with_adapter, without = genai.GenaiDecoder(artifact), genai.GenaiDecoder(bare)
    base = AutoModelForCausalLM.from_pretrained(llama_artifacts["base"], dtype=torch.float32).eval()
    reference = merged(llama_artifacts["base"], llama_artifacts["adapter"])
    ids = Generator(artifact).encode(advisor_texts[0]["prompt"], truncate=True)
    ours_base = without.session(ids, 1).start()
    ours_merged = with_adapter.session(ids, 1).start()
    np.testing.assert_allclose(ours_base, next_logits(base, ids), atol=1e-4)
    np.testing.assert_allclose(ours_merged, next_logits(reference, ids), atol=1e-4)
    assert np.abs(ours_merged - ours_base).max() > 1e-2  # the adapter really changes the answer


def test_two_adapters_share_one_loaded_base(tmp_path, llama_artifacts, advisor_texts, monkeypatch):
    """A second adapter on the same base exports without running the model builder (the base comes
    from the cache), names the same base, loads into the same model, and decodes as its own
    merged model does."""
    from training_jobs.common.tiny_models import random_adapter
    from training_jobs.export import genai_export
    from training_jobs.export.onnx_export import export

    second = random_adapter(llama_artifacts["base"], tmp_path / "adapter-b", seed=7)

    def no_builder(*args, **kwargs):
        raise AssertionError("the base should come from the cache")

    monkeypatch.setattr(genai_export, "_run_builder", no_builder)
    export(second, tmp_path / "b", "fp32", max_input_tokens=512)
    first_manifest, second_manifest = manifest(llama_artifacts["fp32"]), manifest(tmp_path / "b")
    assert first_manifest["base_sha256"] == second_manifest["base_sha256"]
    assert first_manifest["model_version"] != second_manifest["model_version"]

    before = genai.loaded_bases()
    a, b = Generator(verify(llama_artifacts["fp32"])), Generator(verify(tmp_path / "b"))
    assert a.genai is not None and b.genai is not None and a.genai.base is b.genai.base
    assert genai.loaded_bases() <= before + 1
    ids = a.encode(advisor_texts[1]["prompt"], truncate=True)
    for generator, adapter in ((a, llama_artifacts["adapter"]), (b, second)):
        reference = merged(llama_artifacts["base"], adapter)
        tensor = torch.tensor([ids])
        with torch.no_grad():
            out = reference.generate(
                input_ids=tensor,
                attention_mask=torch.ones_like(tensor),
                max_new_tokens=10,
                min_new_tokens=10,
                do_sample=False,
                pad_token_id=0,
            )
        assert generator.generate_ids(ids, 10, 10).token_ids == out[0, len(ids) :].tolist()
    # Interleaved use keeps each adapter's answer: the active adapter is per generation.
    assert a.generate_ids(ids, 10, 10).token_ids != b.generate_ids(ids, 10, 10).token_ids


def test_every_artifact_file_is_readable_by_the_lambda_user(llama_artifacts, t5_artifacts):
    """Lambda runs a container image's code as a non-root user: a file only root may read (onnx
    writes external weights as 0600) would fail the cold start on AWS, never here."""
    for artifacts in (llama_artifacts, t5_artifacts):
        for path in artifacts["int8"].iterdir():
            assert path.stat().st_mode & 0o004, f"{path.name} is not world-readable"


def test_adapters_the_runtime_cannot_apply_exactly_are_refused(tmp_path, llama_artifacts):
    from training_jobs.export.genai_export import lora_settings
    from training_jobs.export.onnx_export import export

    adapter = tmp_path / "dora"
    shutil.copytree(llama_artifacts["adapter"], adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(JobSetupError, match="use_dora"):
        lora_settings(adapter)
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_rslora": True}))
    assert lora_settings(adapter)["scale"] == pytest.approx(config["lora_alpha"] / config["r"] ** 0.5)
    with pytest.raises(JobSetupError, match="int4 is an onnxruntime-genai precision"):
        export(llama_artifacts["adapter"], tmp_path / "x", "int4", engine="graphs")


def test_seq2seq_is_not_sent_to_the_causal_engine(tmp_path, t5_artifacts):
    from training_jobs.export.onnx_export import export

    with pytest.raises(JobSetupError, match="serves causal advisors"):
        export(t5_artifacts["adapter"], tmp_path / "x", "int8", engine="genai")


def test_an_adapter_that_does_not_fit_the_base_graph_is_refused(llama_artifacts):
    from training_jobs.export.genai_export import adapter_parameters, build_base

    built = build_base(str(llama_artifacts["base"]), llama_artifacts["adapter"], "fp32")  # from the cache
    pairs = json.loads((built / "lora_inputs.json").read_text())
    parameters = adapter_parameters(llama_artifacts["adapter"], pairs)
    assert set(parameters) == {f"{stem}.{part}" for stem in pairs for part in "AB"}
    # q and v share the fused qkv projection: A holds both ranks, B writes q's and v's columns only.
    stem, pair = next(iter(pairs.items()))
    assert [slot["module"] for slot in pair["slots"]] == ["q_proj", "v_proj"]
    b = parameters[f"{stem}.B"]
    k_columns = slice(pair["slots"][0]["columns"][1], pair["slots"][1]["columns"][0])
    assert parameters[f"{stem}.A"].shape == (pair["k"], 16) and b.shape == (16, pair["n"])
    assert not b[:, k_columns].any() and b[:8, : pair["slots"][0]["columns"][1]].any()
    fewer = dict(list(pairs.items())[1:])
    with pytest.raises(JobSetupError, match="adapter and base graph disagree"):
        adapter_parameters(llama_artifacts["adapter"], fewer)


# Real weights: the offline causal default with a random adapter, at the shipped precision.


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    from training_jobs.common.models import OFFLINE_CAUSAL, resolve_base_model
    from training_jobs.common.tiny_models import random_adapter
    from training_jobs.export.onnx_export import export

    root = tmp_path_factory.mktemp("smollm2-genai")
    base = resolve_base_model(OFFLINE_CAUSAL)
    adapter = random_adapter(base, root / "adapter")
    export(adapter, root / "int8", "int8", max_input_tokens=512)
    return {"base": base, "adapter": adapter, "int8": root / "int8"}


FIRST = 16


def test_int8_keeps_the_first_greedy_tokens_of_fp32_on_real_weights(smollm2, advisor_texts):
    """The issue's bar: at least 15 of the first 16 greedy tokens equal to fp32 PyTorch (adapter
    merged) on the median real advisor prompt; and teacher-forced on fp32's own answer, int8 picks
    fp32's token at (nearly) every step where fp32 is decisive (top-2 gap >= 0.05). One prompt of
    six diverges at a near-tie after 6 tokens (measured): greedy decoding amplifies a near-tie,
    which is why the whole-answer figure is the median and the decisive steps are checked too."""
    reference = merged(smollm2["base"], smollm2["adapter"])
    generator = Generator(verify(smollm2["int8"]))
    equal, decisive, agree = [], 0, 0
    for pair in advisor_texts[:6]:
        ids = generator.encode(pair["prompt"], truncate=True)
        out = greedy(reference, ids, FIRST)
        forced = out.sequences[0, len(ids) :].tolist()
        ours = generator.generate_ids(ids, FIRST, FIRST).token_ids
        equal.append(sum(x == y for x, y in zip(ours, forced, strict=True)))
        assert generator.genai is not None
        steps = generator.genai.session(ids, FIRST)
        logits = steps.start()
        for position, token in enumerate(forced):
            probabilities = torch.softmax(out.scores[position][0], -1).numpy()
            top2 = np.sort(probabilities)[-2:]
            if top2[1] - top2[0] >= 0.05:
                decisive += 1
                agree += int(int(logits.argmax()) == int(probabilities.argmax()))
            if position + 1 < len(forced):
                logits = steps.step(token)
    print(f"first {FIRST} tokens equal to fp32: {equal}; decisive steps agreeing: {agree}/{decisive}")
    assert decisive >= len(equal) * FIRST * 0.3
    assert agree >= 0.98 * decisive
    assert sorted(equal)[len(equal) // 2] >= 15
