"""Text generation for evaluation, serving and demos: one interface over transformers and llama.cpp.

    gen = load_generator("smollm2-135m", engine="hf")
    outs = gen.generate(prompts, max_new_tokens=48, temperature=0.7, seed=0)
    outs[0].text, outs[0].completion_tokens, outs[0].seconds

RL rollouts use the engines in ``sparring.rl.engines`` (they also return token ids and logprobs
and take weight updates); this module is the simpler read-only path.  Exercised by
``pytest tests/sparring/test_generation.py``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from sparring.errors import UserInputError
from sparring.types import Prompt


@dataclass
class Generation:
    text: str
    completion_tokens: int
    seconds: float
    prompt_tokens: int = 0
    finish_reason: str = "stop"


class Generator(Protocol):
    name: str

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int = 48, temperature: float = 0.7, seed: int = 0, top_p: float = 1.0) -> list[Generation]: ...


def render_chat(tokenizer, messages: Sequence[dict[str, str]]) -> str:
    """The model's own chat template with the assistant turn opened."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


class HFGenerator:
    """Batched transformers generation with left padding; sampling is seeded per call."""

    def __init__(self, model, tokenizer, name: str = "hf", batch_size: int = 16, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model, self.tokenizer, self.name, self.batch_size = model, tokenizer, name, batch_size
        self.tokenizer.padding_side = "left"
        self.context_window = int(getattr(model.config, "max_position_embeddings", 0) or getattr(model.config, "n_positions", 2048))

    def generate(self, prompts, max_new_tokens=48, temperature=0.7, seed=0, top_p=1.0):
        import torch

        out: list[Generation] = []
        eos = self.tokenizer.eos_token_id
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            texts = [render_chat(self.tokenizer, p.messages) for p in chunk]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(seed + start)
            t0 = time.perf_counter()
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=top_p if temperature > 0 else None,
                    top_k=None,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=eos,
                )
            seconds = (time.perf_counter() - t0) / len(chunk)
            new = ids[:, enc["input_ids"].shape[1] :]
            for row, mask in zip(new, enc["attention_mask"]):
                toks = row.tolist()
                finish = "length"
                if eos in toks:
                    toks = toks[: toks.index(eos)]
                    finish = "stop"
                toks = [t for t in toks if t != self.tokenizer.pad_token_id or t == eos]
                out.append(Generation(self.tokenizer.decode(toks, skip_special_tokens=True), len(toks), seconds, int(mask.sum()), finish))
        return out


class LlamaCppGenerator:
    """llama.cpp (llama-cpp-python) on a GGUF file; the prompt is rendered with the HF chat template
    when a tokenizer is given, else with the template stored in the GGUF."""

    def __init__(self, gguf_path: str | Path, tokenizer=None, n_ctx: int = 2048, threads: int | None = None, name: str = "llamacpp"):
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=threads or max(1, os.cpu_count() or 1), verbose=False, seed=0)
        self.tokenizer, self.name = tokenizer, name
        self.context_window = n_ctx

    def generate(self, prompts, max_new_tokens=48, temperature=0.7, seed=0, top_p=1.0):
        out: list[Generation] = []
        for i, p in enumerate(prompts):
            t0 = time.perf_counter()
            if self.tokenizer is not None:
                text = render_chat(self.tokenizer, p.messages)
                res = self.llm.create_completion(text, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed + i, stop=[self.tokenizer.eos_token] if self.tokenizer.eos_token else None)
                choice = res["choices"][0]
                content = choice["text"]
            else:
                res = self.llm.create_chat_completion(list(p.messages), max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed + i)
                choice = res["choices"][0]
                content = choice["message"]["content"] or ""
            usage = res.get("usage", {})
            out.append(Generation(content, int(usage.get("completion_tokens", 0)), time.perf_counter() - t0, int(usage.get("prompt_tokens", 0)), choice.get("finish_reason") or "stop"))
        return out


def load_generator(model: str | os.PathLike[str], engine: str = "hf", *, batch_size: int = 16, threads: int | None = None, dtype: str = "float32") -> Generator:
    """A generator for any model sparring can resolve. ``engine='llamacpp'`` needs a .gguf path."""
    if engine == "hf":
        from sparring.models import load_model

        m, tok = load_model(model, dtype=dtype, merge_adapter=True)
        return HFGenerator(m, tok, name=str(model), batch_size=batch_size, threads=threads)
    if engine == "llamacpp":
        path = Path(str(model))
        if path.suffix != ".gguf" or not path.is_file():
            raise UserInputError(f"the llamacpp engine needs a .gguf file, got {model}", where="engine", fix="export the model first: sparring export <model> --format gguf, or use engine hf")
        return LlamaCppGenerator(path, threads=threads, name=str(model))
    raise UserInputError(f"unknown generation engine {engine!r}", where="engine", fix="use hf or llamacpp")
