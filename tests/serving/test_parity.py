"""Quality parity between the shipped int8 artifacts and fp32, on real weights and fixed inputs.

- Advisor: SmolLM2-135M-Instruct (the offline causal default, real weights) with a LoRA adapter;
  greedy outputs on the evaluation prompts must be identical for at least 90% of them and close
  for the rest.
- Sentiment: MiniLM-L6 (real weights) fine-tuned briefly on the offline corpus; macro-F1 on a
  fixed held-out set may differ by at most 0.5 points.
"""

import difflib

import pytest
from sklearn.metrics import f1_score

from serving.artifacts import verify
from serving.classifier import Classifier
from serving.generator import Generator
from tests.serving.conftest import export_both

PROMPTS, NEW_TOKENS = 10, 32


@pytest.fixture(scope="module")
def smollm2_artifacts(tmp_path_factory):
    from training_jobs.common.models import OFFLINE_CAUSAL, resolve_base_model
    from training_jobs.common.tiny_models import random_adapter

    root = tmp_path_factory.mktemp("smollm2")
    base = resolve_base_model(OFFLINE_CAUSAL)
    adapter = random_adapter(base, root / "adapter", r=4)
    return export_both(adapter, root, base_model=base, max_input_tokens=512)


def test_advisor_int8_greedy_matches_fp32(smollm2_artifacts, advisor_texts):
    fp32, int8 = (Generator(verify(smollm2_artifacts[p])) for p in ("fp32", "int8"))
    identical, ratios = 0, []
    for pair in advisor_texts[:PROMPTS]:
        ids = fp32.encode(pair["prompt"], truncate=True)
        a = fp32.generate_ids(ids, NEW_TOKENS).token_ids
        b = int8.generate_ids(ids, NEW_TOKENS).token_ids
        identical += a == b
        ratios.append(difflib.SequenceMatcher(a=a, b=b).ratio())
    print(f"int8 == fp32 on {identical}/{PROMPTS} prompts; token similarity {sorted(ratios)}")
    assert identical >= 0.9 * PROMPTS
    assert min(ratios) >= 0.5  # the rest are close


@pytest.fixture(scope="module")
def minilm_sentiment(tmp_path_factory):
    from training_jobs.data.sentiment import OFFLINE_CORPUS, cap_rows, load_labelled
    from training_jobs.sentiment import train as job

    root = tmp_path_factory.mktemp("minilm")
    frame = cap_rows(load_labelled(OFFLINE_CORPUS), 3000, seed=3).sample(frac=1.0, random_state=3)
    train, held_out = frame.iloc[:1000], frame.iloc[1000:]  # 2,000 held-out texts: F1 noise well below 0.5
    train.rename(columns={"label": "sentiment"}).to_csv(root / "train.csv", index=False)
    args = ["--base-model", "offline:minilm-l6", "--data", str(root / "train.csv"), "--no-export-onnx"]
    args += ["--model-dir", str(root / "model"), "--output-dir", str(root / "out"), "--epochs", "1"]
    args += ["--batch-size", "32", "--max-length", "48", "--learning-rate", "2e-3"]
    assert job.main(args) == 0
    return export_both(root / "model", root, max_input_tokens=128), held_out


def test_sentiment_int8_macro_f1_within_half_a_point_of_fp32(minilm_sentiment):
    artifacts, held_out = minilm_sentiment
    texts, labels = held_out["text"].tolist(), held_out["label"].tolist()
    scores = {}
    for precision in ("fp32", "int8"):
        model = Classifier(verify(artifacts[precision]))
        predicted = [p.label for i in range(0, len(texts), 32) for p in model.predict(texts[i : i + 32], True)]
        scores[precision] = f1_score(labels, predicted, average="macro")
    print(f"macro-F1 fp32 {scores['fp32']:.4f}, int8 {scores['int8']:.4f} on {len(texts)} held-out texts")
    assert scores["fp32"] > 0.45  # a trained classifier, so the comparison means something
    assert abs(scores["fp32"] - scores["int8"]) <= 0.005
