"""The causal advisor's serving artifact on onnxruntime-genai: one quantised base graph built by
its model builder, and the LoRA adapter as a separate ``.onnx_adapter`` file loaded at run time.

Why this shape (issue 20): the model builder's graphs (fused attention, MatMulNBits int8 with
integer compute) beat our hand-written causal graphs on speed and on agreement with fp32, and a
runtime adapter lets several adapters share one base in one function and lets a new adapter ship
without re-exporting the base.

How: the builder is run with the adapter (``adapter_path``), which lays the LoRA A/B matmuls into
the graph beside each targeted projection, but with the adapter's weights baked in (and
quantised). We turn each LoRA matmul into a plain ``MatMul`` whose weight is a graph input with a
dynamic rank and an empty default, so the base alone computes exactly the base model (a rank-0
LoRA adds zero), and write the adapter's own fp32 weights (A transposed, B transposed and scaled
by alpha/r) into an ONNX Runtime adapter file whose parameters are named after those inputs.
The base graph depends only on the base model, the precision and which modules the adapter
targets, so it is cached by those and reused for every adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess  # nosec B404 - runs onnxruntime-genai's own model builder module
import sys
import tempfile
from pathlib import Path
from typing import Any

from training_jobs.common.checksums import sha256_file
from training_jobs.common.errors import JobSetupError

GENAI_PRECISIONS = ("int8", "int4", "fp32")
ADAPTER_FILE = "adapter.onnx_adapter"
RANK = "lora_rank"
# The builder's names: model.layers.<i>.<attn|mlp>.<proj>.lora_<A|B>.MatMul.weight[_Q8|_Q4]
GRAPH_WEIGHT = re.compile(r"^(model\.layers\.\d+\.(?:attn|mlp)\.\w+\.lora_[AB]\.MatMul\.weight)(?:_Q\d+)?$")
# PEFT's names for the same weights on a Llama-family model.
PEFT_WEIGHT = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")
# Files the builder writes that the runtime reads (the chat template lives in the manifest).
RUNTIME_FILES = ("model.onnx", "model.onnx.data", "genai_config.json")


def log(message: str) -> None:
    print(f"[export] {message}", flush=True)


def cache_root() -> Path:
    default = Path(os.environ.get("FINAI_MODEL_CACHE", Path.home() / ".cache" / "finai-models")) / "genai-bases"
    return Path(os.environ.get("FINAI_GENAI_BASE_CACHE", default))


def _version() -> str:
    from importlib.metadata import version

    return version("onnxruntime-genai")


def lora_settings(adapter_dir: Path) -> dict[str, Any]:
    """What of the adapter shapes the base graph (the modules it targets) and how its weights
    scale; adapters the runtime-adapter path cannot represent exactly are refused by name."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA":
        raise JobSetupError(f"{adapter_dir} is a {config.get('peft_type')} adapter; only LoRA is served")
    for unsupported in ("use_dora", "modules_to_save", "rank_pattern", "alpha_pattern", "layers_to_transform"):
        if config.get(unsupported):
            raise JobSetupError(f"{adapter_dir}: LoRA with {unsupported} cannot be served as a runtime adapter")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    targets = config["target_modules"]
    return {"targets": sorted(targets) if isinstance(targets, list) else targets, "rank": rank, "scale": scale}


def base_key(base: str, revision: str | None, precision: str, targets: Any) -> str:
    identity = {"base": base, "revision": revision, "precision": precision, "targets": targets, "genai": _version()}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _run_builder(base: str, adapter_dir: Path, precision: str, out: Path, scratch: Path) -> None:
    source = ["-i", base] if Path(base).is_dir() else ["-m", base]
    command = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        *source,
        "-o",
        str(out),
        "-p",
        precision,
        "-e",
        "cpu",
        "-c",
        str(scratch / "hf-cache"),
        "--extra_options",
        f"adapter_path={adapter_dir}",
    ]
    log_path = scratch / "builder.log"
    with log_path.open("w") as handle:
        # The builder prints a progress bar per tensor; it goes to a file, and its tail to errors.
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)  # noqa: S603  # nosec B603
    if done.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise JobSetupError(f"onnxruntime-genai's model builder failed (exit {done.returncode}): {tail}")


def strip_lora(model_dir: Path) -> dict[str, list[Any]]:
    """Make every LoRA matmul read its weight from a graph input (dynamic rank, empty default) in
    place; returns those inputs and their shapes."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_dir / "model.onnx"), load_external_data=True)
    graph = model.graph
    nodes, dropped = [], set()
    inputs: dict[str, list[Any]] = {}
    for node in graph.node:
        weight = GRAPH_WEIGHT.match(node.input[1]) if len(node.input) > 1 else None
        if node.op_type not in ("MatMul", "MatMulNBits") or weight is None:
            nodes.append(node)
            continue
        name = weight.group(1)
        if node.op_type == "MatMulNBits":
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            k, n = int(attributes["K"]), int(attributes["N"])
        else:
            dims = next(list(i.dims) for i in graph.initializer if i.name == node.input[1])
            k, n = int(dims[0]), int(dims[1])
        dropped.update(node.input[1:])
        inputs[name] = [k, RANK] if ".lora_A." in name else [RANK, n]
        plain = helper.make_node("MatMul", [node.input[0], name], list(node.output), name=node.name.removesuffix("_Q8"))
        nodes.append(plain)
    if not inputs:
        raise JobSetupError("the model builder's graph has no LoRA matmuls: the adapter targets nothing it knows")
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for name, shape in sorted(inputs.items()):
        shape_names: list[str | int | None] = [d if isinstance(d, int) else str(d) for d in shape]  # rank is symbolic
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape_names))
        # The default is a rank-0 LoRA: with no adapter active, the graph is exactly the base.
        empty = [0 if dim == RANK else int(dim) for dim in shape]
        graph.initializer.append(helper.make_tensor(name, TensorProto.FLOAT, empty, []))
    (model_dir / "model.onnx.data").unlink(missing_ok=True)
    onnx.save(
        model,
        str(model_dir / "model.onnx"),
        save_as_external_data=True,
        location="model.onnx.data",
        all_tensors_to_one_file=True,
    )
    return inputs


def build_base(base: str, adapter_dir: Path, precision: str, revision: str | None = None) -> Path:
    """The base graph for ``base`` at ``precision`` with LoRA inputs for the adapter's modules:
    built once, then taken from the cache (a new adapter does not rebuild it)."""
    if precision not in GENAI_PRECISIONS:
        raise JobSetupError(f"onnxruntime-genai precision must be one of {GENAI_PRECISIONS}, not {precision!r}")
    if revision and not Path(base).is_dir():
        raise JobSetupError("the model builder takes a Hub id without a revision: download the pinned base first")
    settings = lora_settings(adapter_dir)
    target = cache_root() / base_key(base, revision, precision, settings["targets"])
    if (target / "lora_inputs.json").is_file():
        log(f"onnxruntime-genai base {precision} from the cache: {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / "model"
        log(f"onnxruntime-genai model builder: {base} at {precision} (about 20 s for 135M parameters)")
        _run_builder(base, adapter_dir, precision, built, Path(scratch))
        inputs = strip_lora(built)
        (built / "lora_inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        built.rename(target)  # whole or not at all: a cut build is never taken from the cache
    log(f"onnxruntime-genai base with {len(inputs)} LoRA inputs -> {target}")
    return target


def adapter_parameters(adapter_dir: Path, inputs: dict[str, list[Any]]) -> dict[str, Any]:
    """The adapter's weights under the base graph's input names, laid out for its MatMuls."""
    import numpy as np
    from safetensors.numpy import load_file

    settings = lora_settings(adapter_dir)
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    parameters: dict[str, Any] = {}
    for key, value in weights.items():
        match = PEFT_WEIGHT.match(key)
        if match is None:
            raise JobSetupError(f"{adapter_dir}: adapter weight {key!r} has no place in the served graph")
        layer, block, module, part = match.groups()
        name = f"model.layers.{layer}.{'attn' if block == 'self_attn' else 'mlp'}.{module}.lora_{part}.MatMul.weight"
        matrix = value.astype(np.float32).T  # PEFT stores [out, in]; the graph multiplies x @ W
        parameters[name] = np.ascontiguousarray(matrix * settings["scale"] if part == "B" else matrix)
    missing, extra = set(inputs) - set(parameters), set(parameters) - set(inputs)
    if missing or extra:
        raise JobSetupError(
            f"adapter and base graph disagree: missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}"
        )
    for name, shape in inputs.items():
        fixed = [dim for dim in shape if dim != RANK]
        actual = [dim for dim, want in zip(parameters[name].shape, shape, strict=True) if want != RANK]
        if actual != fixed:
            raise JobSetupError(f"{name}: adapter shape {parameters[name].shape} does not fit {shape}")
    return parameters


def write_adapter(parameters: dict[str, Any], path: Path) -> None:
    import onnxruntime as ort

    adapter = ort.AdapterFormat()
    adapter.set_adapter_version(1)
    adapter.set_model_version(1)
    adapter.set_parameters({name: ort.OrtValue.ortvalue_from_numpy(value) for name, value in parameters.items()})
    adapter.export_adapter(str(path))


def export_causal(adapter_dir: Path, out: Path, precision: str, base: str, revision: str | None) -> dict[str, Any]:
    """Base graph files (hard links into the cache where the filesystem allows) and the adapter
    file into ``out``; returns the manifest's engine settings."""
    built = build_base(base, adapter_dir, precision, revision)
    inputs = json.loads((built / "lora_inputs.json").read_text())
    for name in RUNTIME_FILES:
        try:
            os.link(built / name, out / name)
        except OSError:
            shutil.copy(built / name, out / name)
    write_adapter(adapter_parameters(adapter_dir, inputs), out / ADAPTER_FILE)
    config = json.loads((built / "genai_config.json").read_text())["model"]["decoder"]
    digest = hashlib.sha256()
    for name in RUNTIME_FILES:
        digest.update(sha256_file(out / name).encode())
    log(f"adapter {adapter_dir.name}: {len(inputs)} LoRA matrices -> {out / ADAPTER_FILE}")
    return {
        "engine": "onnxruntime-genai",
        "engine_version": _version(),
        "adapter_file": ADAPTER_FILE,
        # Artifacts with the same base share one loaded model in a function (serving.genai).
        "base_sha256": digest.hexdigest(),
        "layers": int(config["num_hidden_layers"]),
        "kv_heads": int(config["num_key_value_heads"]),
        "head_dim": int(config["head_size"]),
    }
