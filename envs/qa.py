"""The synthetic Q/A env: capitals, arithmetic word problems and unit conversions with exact answers.

    env = make_env("qa")
    prompt = env.make_prompt(question="What is the capital of France?", answer="Paris")
    env.score(prompt, "Paris.")      # exact 0, normalized 1, rouge_l 1, bleu ...

Components (``evaluators/text_metrics.py``): ``exact`` (stripped strings equal), ``normalized``
(SQuAD normalization; numbers compared by value, "42.0" == "42"), ``contains`` (the reference is a
whole-word span of the answer: "The capital is Paris"), ``rouge_l`` (F1, rouge-score) and ``bleu``
(sacrebleu sentence BLEU / 100).  Total: 1.0 for a normalized match, 0.7 when the answer only
contains the reference, else 0.5 x ROUGE-L.  Passed = normalized match.  The prompt pool comes
from ``sft/generators/qa.py`` with a fixed data seed, split 80/10/10 by a hash of the question,
so no test question is ever trained on.  Exercised by ``pytest tests/envs/test_text_envs.py -k qa``.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from pydantic import Field

from sparring.envs.base import Env, EnvOptions
from sparring.envs.splits import require_split, seeded_order, split_of
from sparring.errors import UserInputError
from sparring.evaluators import text_metrics as tm
from sparring.registry import register_env
from sparring.sft.generators.qa import QA_KINDS, SYSTEM_PROMPT, generate_qa
from sparring.types import Prompt, Score

_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


class QAOptions(EnvOptions):
    pool_size: int = Field(1000, ge=10, description="Q/A rows generated for the prompt pool (split 80/10/10 by question hash).")
    data_seed: int = Field(0, description="Seed of the Q/A generator (fixes the pool; the prompt order uses the run seed).")
    kinds: list[str] = Field(default_factory=lambda: list(QA_KINDS), description=f"Question kinds: {', '.join(QA_KINDS)}.")
    system_prompt: str = Field(SYSTEM_PROMPT, description="System message ('' for none).")


def numeric_match(prediction: str, reference: str) -> bool:
    """True when both are plain numbers of equal value ("42.0" == "42", "1,000" == "1000")."""
    ref = tm.clean_unicode(reference).strip()
    pred = tm.clean_unicode(prediction).strip().rstrip(".").replace(",", "")
    if not (_NUMBER.match(ref) and _NUMBER.match(pred)):
        return False
    return float(pred) == float(ref)


@register_env("qa")
class QAEnv(Env):
    Options = QAOptions
    name = "qa"

    def __init__(self, options: QAOptions | None = None):
        super().__init__(options)
        self._pool: list[dict[str, Any]] | None = None

    def _rows(self) -> list[dict[str, Any]]:
        if self._pool is None:
            self._pool = generate_qa(self.options.pool_size, seed=self.options.data_seed, kinds=self.options.kinds)
        return self._pool

    def prompts(self, split: str = "train", seed: int = 0) -> Iterator[Prompt]:
        require_split(split)
        rows = seeded_order([r for r in self._rows() if split_of(r["question"]) == split], seed)
        for i, row in enumerate(rows):
            yield self._prompt(row["question"], row["answer"], f"qa-{split}-{i}", row.get("kind", ""))

    def _prompt(self, question: str, answer: str, prompt_id: str, kind: str = "") -> Prompt:
        messages = []
        if self.options.system_prompt:
            messages.append({"role": "system", "content": self.options.system_prompt})
        messages.append({"role": "user", "content": question})
        return Prompt(id=prompt_id, messages=tuple(messages), meta={"env": "qa", "answer": answer, "kind": kind})

    def make_prompt(self, text: str | None = None, **fields: Any) -> Prompt:
        question = fields.get("question") or text
        answer = fields.get("answer")
        if not question or not str(question).strip():
            raise UserInputError("no question given", where="--question", fix='pass --question "..." --answer "..."')
        if answer is None or not str(answer).strip():
            known = {r["question"]: r["answer"] for r in self._rows()}
            answer = known.get(str(question).strip())
            if answer is None:
                raise UserInputError("no reference answer given", where="--answer", fix='pass --answer "..." (the expected answer)')
        return self._prompt(str(question).strip(), str(answer).strip(), "cli")

    def score(self, prompt: Prompt, completion: str) -> Score:
        try:
            return self._score(prompt, completion)
        except Exception as exc:  # never crash on model output
            return Score(0.0, {"normalized": 0.0}, False, {"error": repr(exc)})

    def _score(self, prompt: Prompt, completion: str) -> Score:
        reference = str(prompt.meta.get("answer", ""))
        text = tm.clean_unicode(completion)
        if len(text) > 4000:  # a reference answer is a few words; score the head only
            text = text[:4000]
        normalized = max(tm.normalized_match(text, reference), 1.0 if numeric_match(text, reference) else 0.0)
        comps = {
            "exact": tm.exact_match(text, reference),
            "normalized": normalized,
            "contains": max(normalized, tm.contains_answer(text, reference)),
            "rouge_l": round(tm.rouge_l(text, reference), 4),
            "bleu": round(tm.bleu(text, reference), 4),
        }
        total = 1.0 if normalized else 0.7 if comps["contains"] else 0.5 * comps["rouge_l"]
        return Score(round(total, 4), comps, bool(normalized), {"reference": reference})
