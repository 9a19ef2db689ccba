"""Serving artifacts exported from small models, shared by the export, parity and handler tests.

Tiny random T5 / Llama / BERT models exercise every code path in seconds. The quality-parity
tests use real weights: SmolLM2-135M (the offline causal default) and MiniLM-L6 fine-tuned
briefly, because int8-vs-fp32 agreement means little on near-uniform random logits.
"""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def genai_base_cache(tmp_path_factory):
    """A fresh onnxruntime-genai base cache for the session: a test never serves a base another
    run built, and the tests that check the cache see only their own builds."""
    previous = os.environ.get("FINAI_GENAI_BASE_CACHE")
    os.environ["FINAI_GENAI_BASE_CACHE"] = str(tmp_path_factory.mktemp("genai-bases"))
    yield Path(os.environ["FINAI_GENAI_BASE_CACHE"])
    if previous is None:
        os.environ.pop("FINAI_GENAI_BASE_CACHE", None)
    else:
        os.environ["FINAI_GENAI_BASE_CACHE"] = previous


def export_both(adapter: Path, out: Path, **kwargs) -> dict[str, Path]:
    from training_jobs.export.onnx_export import export

    paths = {}
    for precision in ("fp32", "int8"):
        export(adapter, out / precision, precision, **kwargs)
        paths[precision] = out / precision
    return paths


@pytest.fixture(scope="session")
def advisor_texts():
    from training_jobs.data.advisor_pairs import pairs_for_user
    from training_jobs.data.config import load_config
    from training_jobs.data.transactions import generate

    config = load_config("training_jobs/configs/synthetic.yaml")
    frame, _ = generate(config.model_copy(update={"users": 4, "months": 4}))
    end = max(frame["date"])
    pairs = []
    for user_id, rows in frame.groupby("user_id", sort=True):
        pairs += list(pairs_for_user(rows, str(user_id), config.advisor, end))
    return pairs


@pytest.fixture(scope="session")
def t5_artifacts(tmp_path_factory, advisor_texts):
    from training_jobs.common.tiny_models import build_t5, random_adapter

    root = tmp_path_factory.mktemp("t5-serving")
    base = build_t5(root / "base", [p["prompt"] + " " + p["target"] for p in advisor_texts])
    adapter = random_adapter(base, root / "adapter")
    return {"base": base, "adapter": adapter, **export_both(adapter, root, max_input_tokens=512)}


@pytest.fixture(scope="session")
def llama_artifacts(tmp_path_factory, advisor_texts):
    from training_jobs.common.tiny_models import build_llama, random_adapter

    root = tmp_path_factory.mktemp("llama-serving")
    base = build_llama(root / "base", [p["prompt"] + " " + p["target"] for p in advisor_texts])
    adapter = random_adapter(base, root / "adapter")
    return {"base": base, "adapter": adapter, **export_both(adapter, root, max_input_tokens=512)}


@pytest.fixture(scope="session")
def llama_graph_artifacts(llama_artifacts, tmp_path_factory):
    """The same adapter exported to our own causal step graph (``--engine graphs``), which the
    benchmark keeps as the row the onnxruntime-genai engine replaced."""
    root = tmp_path_factory.mktemp("llama-graphs")
    return {**llama_artifacts, **export_both(llama_artifacts["adapter"], root, max_input_tokens=512, engine="graphs")}


@pytest.fixture(scope="session")
def bert_artifacts(tmp_path_factory):
    """A 2-layer BERT classifier with MiniLM's real tokenizer and a random LoRA adapter."""
    from training_jobs.common.tiny_models import build_bert, random_adapter
    from training_jobs.data.sentiment import LABELS

    root = tmp_path_factory.mktemp("bert-serving")
    base = build_bert(root / "base")
    adapter = random_adapter(base, root / "adapter", labels=list(LABELS))
    return {"base": base, "adapter": adapter, **export_both(adapter, root, max_input_tokens=48)}


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def merged(base: Path, adapter: Path, loader: type | None = None):
    """The fp32 reference every serving path is held to: PyTorch with the LoRA adapter merged."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = (loader or AutoModelForCausalLM).from_pretrained(base, dtype=torch.float32)
    return PeftModel.from_pretrained(model, adapter).merge_and_unload().eval()


def greedy(model, ids: list[int], steps: int):
    """transformers' greedy decoding of exactly `steps` tokens, with the scores of every step."""
    import torch

    tensor = torch.tensor([ids])
    with torch.no_grad():
        return model.generate(
            input_ids=tensor,
            attention_mask=torch.ones_like(tensor),
            max_new_tokens=steps,
            min_new_tokens=steps,
            do_sample=False,
            pad_token_id=0,
            output_scores=True,
            return_dict_in_generate=True,
        )


@pytest.fixture(scope="session")
def t5_plan_artifact(tmp_path_factory, t5_artifacts):
    """The tiny T5 adapter exported as a plan advisor (it writes steps; the handler renders them)."""
    from training_jobs.export.onnx_export import export

    out = tmp_path_factory.mktemp("t5-plan") / "int8"
    export(t5_artifacts["adapter"], out, "int8", max_input_tokens=512, answer_format="plan")
    return out


class InProcessSentiment:
    """boto3's Lambda ``invoke`` answered by the real sentiment container handler in this process
    (the client the router's LambdaProvider is given in tests)."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []

    def invoke(self, FunctionName, Payload):  # boto3's parameter names
        import io

        from local.request_path import FakeContext
        from sentiment import handler

        self.payloads.append(json.loads(Payload))
        result = handler.lambda_handler(json.loads(Payload), FakeContext("sentiment", "us-east-1"))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}
