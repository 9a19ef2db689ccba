"""The causal advisor's serving artifact on onnxruntime-genai: one quantised base graph built by
its model builder, and the LoRA adapter as a separate ``.onnx_adapter`` file loaded at run time.

Why this shape (issue 20): the model builder's graphs (fused attention, MatMulNBits int8 with
integer compute) beat our hand-written causal graphs on speed and on agreement with fp32, and a
runtime adapter lets several adapters share one base in one function and lets a new adapter ship
without re-exporting the base.

How: the builder writes the plain base (fused q/k/v projection, int8 MatMulNBits). Beside each
projection the adapter targets we add ``x @ A @ B`` to its output, with A and B graph inputs of
dynamic rank and an empty default, so the base alone computes exactly the base model (a rank-0
LoRA adds zero). For a fused projection one A/B pair carries every targeted module, each in its
own rows of A and columns of B, so the fused kernel stays. (The builder's own ``adapter_path``
unfuses q/k/v and bakes the weights in; measured, that path was about 8% slower per token.)
The adapter's fp32 weights go into an ONNX Runtime adapter file named after those inputs, so
quantisation touches the base only: on real SmolLM2 weights that kept the median prompt's first
16 greedy tokens equal to fp32, where int8 of the merged weights kept 6 (bench/results.md).
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

from training_jobs.common.errors import JobSetupError

GENAI_PRECISIONS = ("int8", "int4", "fp32")
ADAPTER_FILE = "adapter.onnx_adapter"
LAYOUT = 3
# PEFT's names for LoRA weights on a Llama-family model.
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
    # The modules the weights really hold (target_modules may be a regex or name absent ones).
    from safetensors import safe_open

    targets = set()
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="numpy") as weights:
        for key in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
            match = PEFT_WEIGHT.match(key)
            if match is None:
                raise JobSetupError(f"{adapter_dir}: adapter weight {key!r} has no place in the served graph")
            targets.add(match.group(3))
    return {"targets": sorted(targets), "rank": rank, "scale": scale}


def base_key(base: str, revision: str | None, precision: str, targets: Any) -> str:
    identity = {
        "base": base,
        "revision": revision,
        "precision": precision,
        "targets": targets,
        "genai": _version(),
        "layout": LAYOUT,  # how attach_lora shapes the graph: a new layout never reads an old cache
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _run_builder(base: str, precision: str, out: Path, scratch: Path) -> None:
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
        # Logits for the last prompt position only: the prefill of a 96-token prompt took 197 ms
        # instead of 241 ms, the 64-token answer 666 instead of 698 ms, with the same tokens.
        "--extra_options",
        "prune_lm_head=true",
    ]
    log_path = scratch / "builder.log"
    with log_path.open("w") as handle:
        # The builder prints a progress bar per tensor; it goes to a file, and its tail to errors.
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)  # noqa: S603  # nosec B603
    if done.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise JobSetupError(f"onnxruntime-genai's model builder failed (exit {done.returncode}): {tail}")


# PEFT module -> (block, graph projection) where the builder fuses projections into one MatMul.
PACKED = {
    "q_proj": ("attn", "qkv_proj"),
    "k_proj": ("attn", "qkv_proj"),
    "v_proj": ("attn", "qkv_proj"),
    "gate_proj": ("mlp", "gate_up_proj"),
    "up_proj": ("mlp", "gate_up_proj"),
}
BLOCKS = {"q_proj": "attn", "k_proj": "attn", "v_proj": "attn", "o_proj": "attn"}


def _columns(module: str, decoder: dict[str, Any], n: int) -> tuple[int, int]:
    """Where a module's outputs sit in a fused projection's output columns."""
    q = int(decoder["num_attention_heads"]) * int(decoder["head_size"])
    kv = int(decoder["num_key_value_heads"]) * int(decoder["head_size"])
    spans = {"q_proj": (0, q), "k_proj": (q, q + kv), "v_proj": (q + kv, q + 2 * kv)}
    spans |= {"gate_proj": (0, n // 2), "up_proj": (n // 2, n)}
    return spans[module]


def attach_lora(model_dir: Path, targets: list[str]) -> dict[str, Any]:
    """Beside every projection the adapter targets, add ``x @ A @ B`` to the projection's output,
    with A and B graph inputs (dynamic rank, empty default). Projections the builder fused (q, k
    and v into qkv_proj) keep their fused kernel: one A/B pair per fused projection, with each
    module's part of B in its own columns, so the adapter costs two small MatMuls and an Add per
    fused projection instead of unfusing attention. Returns the inputs and, per input pair, which
    modules fill which rows and columns."""
    import onnx
    from onnx import TensorProto, helper

    decoder = json.loads((model_dir / "genai_config.json").read_text())["model"]["decoder"]
    model = onnx.load(str(model_dir / "model.onnx"), load_external_data=True)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    by_name = {n.name.removesuffix("_Q8").removesuffix("_Q4"): n for n in graph.node}
    pairs: dict[str, Any] = {}
    added = []
    for layer in range(int(decoder["num_hidden_layers"])):
        groups: dict[str, list[str]] = {}
        for module in targets:
            block, projection = BLOCKS.get(module, "mlp"), module
            if f"/model/layers.{layer}/{block}/{module}/MatMul" not in by_name and module in PACKED:
                block, projection = PACKED[module]
            groups.setdefault(f"{block}/{projection}", []).append(module)
        for path, modules in sorted(groups.items()):
            node = by_name.get(f"/model/layers.{layer}/{path}/MatMul")
            if node is None or node.op_type not in ("MatMul", "MatMulNBits"):
                raise JobSetupError(f"the base graph has no {path} projection in layer {layer} for {modules}")
            if node.op_type == "MatMulNBits":
                attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
                k, n = int(attributes["K"]), int(attributes["N"])
            else:
                k, n = (int(d) for d in initializers[node.input[1]].dims)
            fused = path.split("/")[1] != modules[0]
            slots = [{"module": m, "columns": list(_columns(m, decoder, n)) if fused else [0, n]} for m in modules]
            stem = f"lora.{layer}.{path.replace('/', '.')}"
            rank = f"rank_{layer}_{path.replace('/', '_')}"
            pairs[stem] = {"layer": layer, "k": k, "n": n, "rank": rank, "slots": slots}
            output = node.output[0]
            summed = f"{output}/lora_sum"
            for consumer in graph.node:  # the projection's readers now read projection + LoRA
                consumer.input[:] = [summed if name == output else name for name in consumer.input]
            added += [
                helper.make_node("MatMul", [node.input[0], f"{stem}.A"], [f"{stem}/xa"], name=f"{stem}/MatMulA"),
                helper.make_node("MatMul", [f"{stem}/xa", f"{stem}.B"], [f"{stem}/xab"], name=f"{stem}/MatMulB"),
                helper.make_node("Add", [output, f"{stem}/xab"], [summed], name=f"{stem}/Add"),
            ]
            shapes: tuple[tuple[str, list[str | int | None]], ...] = (
                (f"{stem}.A", [k, rank]),
                (f"{stem}.B", [rank, n]),
            )
            for name, shape in shapes:
                graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
                # The default is a rank-0 LoRA: with no adapter active, the graph is exactly the base.
                empty = [dim if isinstance(dim, int) else 0 for dim in shape]
                graph.initializer.append(helper.make_tensor(name, TensorProto.FLOAT, empty, []))
    if not pairs:
        raise JobSetupError("the adapter targets no projection of the base graph")
    graph.node.extend(added)  # appended, then sorted below: ONNX wants nodes in topological order
    _sort_topologically(graph)
    (model_dir / "model.onnx.data").unlink(missing_ok=True)
    onnx.save(
        model,
        str(model_dir / "model.onnx"),
        save_as_external_data=True,
        location="model.onnx.data",
        all_tensors_to_one_file=True,
    )
    return pairs


def _sort_topologically(graph: Any) -> None:
    produced_by = {out: node for node in graph.node for out in node.output}
    ordered, done, seen = [], set(), set()
    for root in list(graph.node):
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                ordered.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack += [
                (produced_by[i], False) for i in node.input if i in produced_by and id(produced_by[i]) not in done
            ]
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


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
        log(f"onnxruntime-genai model builder: {base} at {precision}, about 20 s for 135M parameters")
        _run_builder(base, precision, built, Path(scratch))
        inputs = attach_lora(built, settings["targets"])
        (built / "lora_inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
        for path in built.iterdir():
            # onnx writes external data as 0600; Lambda runs an image's code as a non-root user,
            # which could not read a baked-in model file that only root may read.
            path.chmod(0o644)
        shutil.rmtree(target, ignore_errors=True)
        built.rename(target)  # whole or not at all: a cut build is never taken from the cache
    log(f"onnxruntime-genai base with {len(inputs)} LoRA input pairs -> {target}")
    return target


def adapter_parameters(adapter_dir: Path, pairs: dict[str, Any]) -> dict[str, Any]:
    """The adapter's weights as the base graph's A/B inputs: per projection, A is the modules'
    A matrices side by side ([in, sum of ranks]) and B places each module's scaled B in its own
    rows and output columns (zeros elsewhere), so x @ A @ B adds exactly each module's LoRA."""
    import numpy as np
    from safetensors.numpy import load_file

    settings = lora_settings(adapter_dir)
    weights: dict[tuple[int, str], dict[str, Any]] = {}
    for key, value in load_file(str(adapter_dir / "adapter_model.safetensors")).items():
        match = PEFT_WEIGHT.match(key)
        if match is None:
            raise JobSetupError(f"{adapter_dir}: adapter weight {key!r} has no place in the served graph")
        layer, _, module, part = match.groups()
        weights.setdefault((int(layer), module), {})[part] = value.astype(np.float32)
    parameters: dict[str, Any] = {}
    used = set()
    for stem, pair in pairs.items():
        a_parts, b_rows = [], []
        for slot in pair["slots"]:
            found = weights.get((pair["layer"], slot["module"]))
            if found is None:
                raise JobSetupError(
                    f"adapter and base graph disagree: no {slot['module']} weights for layer {pair['layer']}"
                )
            used.add((pair["layer"], slot["module"]))
            a, b = found["A"], found["B"]  # PEFT: A [r, in], B [out, r]
            if a.shape[1] != pair["k"] or b.shape[0] != slot["columns"][1] - slot["columns"][0]:
                raise JobSetupError(f"{stem}: {slot['module']} weights {a.shape}, {b.shape} do not fit the graph")
            a_parts.append(a.T)
            rows = np.zeros((a.shape[0], pair["n"]), dtype=np.float32)
            rows[:, slot["columns"][0] : slot["columns"][1]] = b.T * settings["scale"]
            b_rows.append(rows)
        parameters[f"{stem}.A"] = np.ascontiguousarray(np.concatenate(a_parts, axis=1))
        parameters[f"{stem}.B"] = np.ascontiguousarray(np.concatenate(b_rows, axis=0))
    extra = set(weights) - used
    if extra:
        raise JobSetupError(f"adapter and base graph disagree: weights for {sorted(extra)[:3]} have no place")
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
    for name in (*RUNTIME_FILES, ADAPTER_FILE):
        (out / name).chmod(0o644)  # also for a base cached before build_base set it (see there)
    config = json.loads((built / "genai_config.json").read_text())["model"]
    decoder, eos = config["decoder"], config["eos_token_id"]
    log(f"adapter {adapter_dir.name}: {len(inputs)} LoRA pairs -> {out / ADAPTER_FILE}")
    return {
        "engine": "onnxruntime-genai",
        "engine_version": _version(),
        "adapter_file": ADAPTER_FILE,
        "eos_token_id": int(eos[0] if isinstance(eos, list) else eos),
        "layers": int(decoder["num_hidden_layers"]),
        "kv_heads": int(decoder["num_key_value_heads"]),
        "head_dim": int(decoder["head_size"]),
    }


def base_digest(files: dict[str, str]) -> str:
    """The manifest's ``base_sha256``, from its per-file SHA-256s of the base graph's files:
    artifacts with the same base share one loaded model in a function (serving.genai)."""
    digest = hashlib.sha256()
    for name in RUNTIME_FILES:
        digest.update(files[name].encode())
    return digest.hexdigest()
