"""The exported graphs compute what the merged PyTorch model computes, and the artifact is whole."""

import json

import numpy as np
import pytest
import torch

from serving.artifacts import ArtifactError, verify
from serving.classifier import Classifier
from serving.generator import Generator
from tests.serving.conftest import greedy, manifest, merged


@pytest.mark.parametrize("kind", ["t5", "llama", "llama-graphs"])
def test_fp32_greedy_matches_transformers_generate(
    kind, t5_artifacts, llama_artifacts, llama_graph_artifacts, advisor_texts
):
    """Both causal engines (onnxruntime-genai with the runtime adapter, and our own graph) and
    the seq2seq graphs decode exactly what transformers does with the adapter merged."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    artifacts = {"t5": t5_artifacts, "llama": llama_artifacts, "llama-graphs": llama_graph_artifacts}[kind]
    loader = AutoModelForSeq2SeqLM if kind == "t5" else AutoModelForCausalLM
    model = merged(artifacts["base"], artifacts["adapter"], loader)
    generator = Generator(verify(artifacts["fp32"]))
    for pair in advisor_texts[:3]:
        ids = generator.encode(pair["prompt"], truncate=True)
        ours = generator.generate_ids(ids, max_new_tokens=12, min_new_tokens=12).token_ids
        out = greedy(model, ids, 12).sequences
        reference = out[0, 1:] if kind == "t5" else out[0, len(ids) :]
        assert ours == reference.tolist()


def mean_top_probability(model, ids, steps):
    out = greedy(model, ids, steps)
    return float(np.mean([torch.softmax(score[0], -1).max().item() for score in out.scores]))


def test_confidence_is_the_merged_models_mean_token_probability(t5_artifacts, advisor_texts):
    """Equal to the merged model's, different from the bare base's: the adapter is in the graph."""
    from transformers import AutoModelForSeq2SeqLM

    generator = Generator(verify(t5_artifacts["fp32"]))
    ids = generator.encode(advisor_texts[0]["prompt"], truncate=True)
    ours = generator.generate_ids(ids, 8, 8).confidence
    tuned = mean_top_probability(merged(t5_artifacts["base"], t5_artifacts["adapter"], AutoModelForSeq2SeqLM), ids, 8)
    base = mean_top_probability(AutoModelForSeq2SeqLM.from_pretrained(t5_artifacts["base"]).eval(), ids, 8)
    assert ours == pytest.approx(tuned, abs=1e-3)
    assert abs(ours - base) > 1e-3


def test_classifier_matches_merged_pytorch(bert_artifacts):
    from transformers import AutoModelForSequenceClassification

    from training_jobs.data.sentiment import LABELS

    base = AutoModelForSequenceClassification.from_pretrained(bert_artifacts["base"], num_labels=len(LABELS))
    from peft import PeftModel

    model = PeftModel.from_pretrained(base, bert_artifacts["adapter"]).merge_and_unload().eval()
    classifier = Classifier(verify(bert_artifacts["fp32"]))
    texts = ["$AAPL beats estimates, shares jump", "Guidance cut again; margins under pressure", "Flat day"]
    predictions = classifier.predict(texts)
    tokenizer_batch = [classifier.tokenizer.encode(t).ids for t in texts]
    for text_ids, prediction in zip(tokenizer_batch, predictions, strict=True):
        with torch.no_grad():
            probs = torch.softmax(model(input_ids=torch.tensor([text_ids])).logits, -1)[0].numpy()
        ours = np.array([prediction.probabilities[label] for label in LABELS])
        np.testing.assert_allclose(ours, probs, atol=2e-4)


def test_a_mean_pooled_classifier_exports_its_pooling(tmp_path, bert_artifacts):
    """The adapter's pooling.json reaches the graph: the artifact pools as training did."""
    import shutil

    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from training_jobs.data.sentiment import LABELS
    from training_jobs.export.onnx_export import export
    from training_jobs.sentiment import pooling

    adapter = tmp_path / "adapter"
    shutil.copytree(bert_artifacts["adapter"], adapter)
    pooling.save(adapter, "mean")
    export(adapter, tmp_path / "fp32", "fp32", max_input_tokens=48)
    base = AutoModelForSequenceClassification.from_pretrained(bert_artifacts["base"], num_labels=len(LABELS))
    model = pooling.apply(PeftModel.from_pretrained(base, bert_artifacts["adapter"]).merge_and_unload().eval(), "mean")
    mean_pooled, cls_pooled = Classifier(verify(tmp_path / "fp32")), Classifier(verify(bert_artifacts["fp32"]))
    texts = ["$AAPL beats estimates, shares jump", "Guidance cut again; margins under pressure"]
    for text, ours, first_token in zip(texts, mean_pooled.predict(texts), cls_pooled.predict(texts), strict=True):
        ids = torch.tensor([mean_pooled.tokenizer.encode(text).ids])
        with torch.no_grad():
            probs = torch.softmax(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits, -1)[0].numpy()
        np.testing.assert_allclose([ours.probabilities[label] for label in LABELS], probs, atol=2e-4)
        assert max(abs(ours.probabilities[k] - first_token.probabilities[k]) for k in LABELS) > 1e-3


def test_unknown_pooling_is_a_clear_error(tmp_path):
    from training_jobs.common.errors import JobSetupError
    from training_jobs.sentiment import pooling

    (tmp_path / pooling.POOLING_FILE).write_text('{"pooling": "max"}')
    with pytest.raises(JobSetupError, match="expected one of"):
        pooling.load(tmp_path)
    assert pooling.load(tmp_path / "elsewhere") == "cls"  # adapters from before the choice


def test_manifest_describes_the_artifact(t5_artifacts, llama_artifacts, bert_artifacts):
    t5, llama, bert = (manifest(a["int8"]) for a in (t5_artifacts, llama_artifacts, bert_artifacts))
    assert (t5["architecture"], t5["task"], t5["precision"]) == ("seq2seq", "advisor", "int8")
    assert set(t5["files"]) == {"encoder.onnx", "decoder.onnx", "tokenizer.json"}
    assert (llama["architecture"], llama["engine"]) == ("causal", "onnxruntime-genai")
    assert set(llama["files"]) == {
        "model.onnx",
        "model.onnx.data",
        "genai_config.json",
        "adapter.onnx_adapter",
        "tokenizer.json",
    }
    assert t5["engine"] == bert["engine"] == "graphs"
    assert bert["labels"] == ["negative", "neutral", "positive"] and "classifier.onnx" in bert["files"]
    assert t5["model_version"] != manifest(t5_artifacts["fp32"])["model_version"]


def test_int8_is_smaller_than_fp32(t5_artifacts):
    def size(path):
        return sum(p.stat().st_size for p in path.glob("*.onnx"))

    assert size(t5_artifacts["int8"]) < 0.6 * size(t5_artifacts["fp32"])


def test_checksum_mismatch_fails_clearly(tmp_path, t5_artifacts):
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(t5_artifacts["int8"], copy)
    with (copy / "decoder.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match=r"checksum mismatch for decoder.onnx"):
        verify(copy)
    (copy / "decoder.onnx").unlink()
    with pytest.raises(ArtifactError, match=r"decoder.onnx is listed in the manifest but missing"):
        verify(copy)


def test_export_cli_writes_serve_next_to_the_adapter(tmp_path, t5_artifacts, capsys):
    import shutil

    from training_jobs.export.onnx_export import main

    adapter = tmp_path / "model"
    shutil.copytree(t5_artifacts["adapter"], adapter)
    assert main(["--adapter", str(adapter), "--base-model", str(t5_artifacts["base"])]) == 0
    assert json.loads((adapter / "serve" / "manifest.json").read_text())["precision"] == "int8"
    assert main(["--adapter", str(tmp_path / "nothing")]) == 2
    assert "adapter_config.json" in capsys.readouterr().err


def test_repetition_penalty_changes_only_repeated_tokens(t5_artifacts, advisor_texts):
    from serving.generator import _penalise

    logits = np.array([2.0, -1.0, 0.5, 3.0], dtype=np.float32)
    np.testing.assert_allclose(_penalise(logits, [0, 1], 2.0), [1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(_penalise(logits, [0, 1], 1.0), logits)
    generator = Generator(verify(t5_artifacts["fp32"]))
    ids = generator.encode(advisor_texts[0]["prompt"], truncate=True)
    plain = generator.generate_ids(ids, 24, 24).token_ids
    strict = generator.generate_ids(ids, 24, 24, repetition_penalty=50.0).token_ids
    assert len(set(strict)) > len(set(plain)) or len(set(plain)) == 24  # fewer repeats under a strong penalty


@pytest.mark.parametrize("kind", ["t5", "llama"])
def test_head_reshapes_are_constants_not_shape_arithmetic(kind, t5_artifacts, llama_graph_artifacts):
    """Each attention head split or merge reshapes to a constant shape (batch 1), so no
    Shape/Gather/Concat chain runs before it at every generated token: that glue cost as much as
    the int8 products. Only the cache length (past_length) may be read from a tensor."""
    import onnx

    artifacts = t5_artifacts if kind == "t5" else llama_graph_artifacts
    graph = onnx.load(str(artifacts["fp32"] / "decoder.onnx"), load_external_data=False).graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    reshapes = [n for n in graph.node if n.op_type == "Reshape"]
    layers = manifest(artifacts["fp32"])["layers"]
    assert len(reshapes) >= 4 * layers  # q/k/v splits and the merge in every layer
    computed = [n.name for n in reshapes if n.input[1] not in constants]
    assert computed == []
    assert sum(n.op_type == "Shape" for n in graph.node) <= 8  # cache length and new tokens, not per layer


def test_quantising_prints_no_preprocessing_hint(tmp_path, bert_artifacts, caplog):
    """onnxruntime's "consider pre-processing" hint is noise for dynamic int8 (README); it is dropped
    and nothing else is: the filter is gone once quantisation returns."""
    import logging

    from training_jobs.export.onnx_export import quantize

    caplog.set_level(logging.WARNING)
    quantize(bert_artifacts["fp32"] / "classifier.onnx", tmp_path / "classifier.int8.onnx")
    assert (tmp_path / "classifier.int8.onnx").stat().st_size > 0
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    logging.warning("Please consider to run pre-processing before quantization")
    assert any("pre-processing" in r.getMessage() for r in caplog.records)
