"""One serving path in a fresh process: cold start, warm latency, peak memory and fp32 agreement.

``python -m bench.worker SPEC_JSON`` answers once and prints ``READY``, times one generation per
``run`` line on stdin (``TIME``), and prints ``RESULT`` at ``done``, with the first greedy tokens
it gives for each of the spec's ``agreement_prompts`` (the parent compares them with fp32).
ONNX paths import only the Lambda's runtime (``serving``), never torch, so their memory and
start-up are what the container pays. Peer engines (onnxruntime-genai on a merged model,
CTranslate2, llama.cpp) import only their own runtime and ``tokenizers``; the llama.cpp worker
runs in its own virtualenv's interpreter, so this module imports nothing outside the standard
library at the top.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.time()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb() -> float:
    """This process's high-water mark (VmHWM). ru_maxrss would not do: Linux carries it across
    execve, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def torch_runner(spec: dict[str, Any]) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    torch.set_num_threads(spec["threads"])
    config = AutoConfig.from_pretrained(spec["model"])  # nosec B615 - a local directory
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = loader.from_pretrained(spec["model"], dtype=torch.float32, attn_implementation="eager")
    if spec.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec["adapter"])  # unmerged: LoRA runs beside each projection
    model.eval()

    def run(prompt: list[int], new: int) -> list[int]:
        ids = torch.tensor([prompt])
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=0,
            )
        tokens = out[0].tolist()
        return tokens[1:] if seq2seq else tokens[ids.shape[1] :]

    return run


def onnx_runner(spec: dict[str, Any]) -> Any:
    """Our serving runtime on an exported artifact (either engine), as the Lambda runs it."""
    os.environ["ORT_THREADS"] = str(spec["threads"])
    from serving.artifacts import verify
    from serving.generator import Generator

    generator = Generator(verify(Path(spec["model"])))
    return lambda prompt, new: generator.generate_ids(prompt, new, new).token_ids


def genai_runner(spec: dict[str, Any]) -> Any:
    """onnxruntime-genai on a model the builder wrote from the merged checkpoint: its own greedy
    search, end of sequence suppressed until the requested length (min_length)."""
    import onnxruntime_genai as og

    config = og.Config(spec["model"])
    config.clear_providers()
    options = {"intra_op_num_threads": spec["threads"], "inter_op_num_threads": 1}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    model = og.Model(config)

    def run(prompt: list[int], new: int) -> list[int]:
        params = og.GeneratorParams(model)
        total = len(prompt) + new
        params.set_search_options(max_length=total, min_length=total, do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(prompt)
        while not generator.is_done():
            generator.generate_next_token()
        return [int(t) for t in generator.get_sequence(0)[len(prompt) :]]

    return run


def ct2_runner(spec: dict[str, Any]) -> Any:
    """CTranslate2 (int8 weights) on its converted model; token strings from tokenizer.json."""
    import ctranslate2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(spec["model"]) / "tokenizer.json"))
    options = {"device": "cpu", "compute_type": "int8", "intra_threads": spec["threads"], "inter_threads": 1}
    if spec.get("seq2seq"):
        translator = ctranslate2.Translator(spec["model"], **options)

        def translate(prompt: list[int], new: int) -> list[int]:
            source = [tokenizer.id_to_token(i) for i in prompt]
            result = translator.translate_batch([source], beam_size=1, max_decoding_length=new, min_decoding_length=new)
            return [int(tokenizer.token_to_id(t) or 0) for t in result[0].hypotheses[0]]

        return translate
    generator = ctranslate2.Generator(spec["model"], **options)

    def generate(prompt: list[int], new: int) -> list[int]:
        tokens = [tokenizer.id_to_token(i) for i in prompt]
        result = generator.generate_batch(
            [tokens], max_length=new, min_length=new, sampling_topk=1, include_prompt_in_result=False
        )
        return [int(i) for i in result[0].sequences_ids[0]]

    return generate


def llama_runner(spec: dict[str, Any]) -> Any:
    """llama.cpp through llama-cpp-python on a GGUF file; greedy (top-k 1), end of sequence
    suppressed until the requested length, as for the other paths."""
    import numpy as np
    from llama_cpp import Llama, LogitsProcessorList

    llm = Llama(
        model_path=spec["model"],
        n_ctx=512,
        n_batch=512,
        n_threads=spec["threads"],
        n_threads_batch=spec["threads"],
        verbose=False,
    )
    eos = llm.token_eos()

    def run(prompt: list[int], new: int) -> list[int]:
        def no_eos(_ids: Any, scores: Any) -> Any:
            scores[eos] = -np.inf
            return scores

        tokens: list[int] = []
        llm.reset()  # otherwise generate() reuses the previous run's prompt cache and skips prefill
        stream = llm.generate(
            prompt,
            top_k=1,
            top_p=1.0,
            temp=0.0,
            repeat_penalty=1.0,
            reset=True,
            logits_processor=LogitsProcessorList([no_eos]),
        )
        for token in stream:
            tokens.append(int(token))
            if len(tokens) == new:
                break
        return tokens

    return run


RUNNERS = {"torch": torch_runner, "onnx": onnx_runner, "genai": genai_runner, "ct2": ct2_runner, "llama": llama_runner}


def main() -> int:
    """Answer once (the cold start), then time one run per ``run`` line on stdin until ``done``.

    The parent drives every path's worker in turn, so warm runs of (a) to (d) interleave and a
    noisy moment on a shared machine lands on all of them, not on whichever path ran then.
    """
    spec = json.loads(sys.argv[1])
    generate = RUNNERS[spec["kind"]](spec)
    prompt, new = spec["prompt_ids"], spec["new_tokens"]

    def run() -> list[int]:
        return generate(prompt, new)

    first = run()
    answered_at = time.time()  # the parent subtracts its spawn time: interpreter start-up counts
    print("READY " + json.dumps({"first_answer_at": answered_at, "in_process_s": round(answered_at - STARTED, 3)}))
    sys.stdout.flush()
    timings = []
    tokens = first
    for command in sys.stdin:
        if command.strip() != "run":
            break
        began = time.perf_counter()
        tokens = run()
        timings.append(time.perf_counter() - began)
        print(f"TIME {timings[-1]}", flush=True)
    # After the timed runs, so the cold start and the timings are the serving path's alone.
    agreement = [generate(p, spec["agreement_tokens"]) for p in spec.get("agreement_prompts", [])]
    result = {
        "agreement_tokens": agreement,
        "p50_s": round(percentile(timings, 50), 4),
        "p95_s": round(percentile(timings, 95), 4),
        "runs": len(timings),
        "generated_tokens": len(tokens),
        "first_tokens": first[:64],
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
