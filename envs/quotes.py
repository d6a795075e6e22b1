"""The keyword-quote env: "Write a quote about <keyword>." answered in three lines.

    Keyword: courage
    Quote: Courage is fear that has said its prayers.
    - Dorothy Bernstein

    env = make_env("quotes")
    env.score(env.make_prompt(keyword="courage"), "Keyword: courage\\nQuote: ...\\n- Someone")

Components: ``format`` (exactly those three lines; the dash may be -, – or —), ``keyword`` (the
Keyword line names the asked keyword and the quote uses it, any inflection), ``length`` (quote
20-200 characters), ``clean`` (no profanity), ``novelty`` (1 - largest share of the quote's word
3-grams found in one corpus quote; 0 for a copy).  Total = format x clean x mean(keyword, length,
novelty); passed = every component at 1 except novelty >= 0.5.  Splits by keyword (seeded,
80/10/10).  Exercised by ``pytest tests/envs/test_text_envs.py -k quotes``.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from pydantic import Field

from sparring.envs.base import Env, EnvOptions
from sparring.envs.splits import require_split, seeded_order, split_of
from sparring.errors import UserInputError
from sparring.evaluators.clean_language import find_profanity
from sparring.evaluators.text_metrics import clean_unicode, containment, has_invalid_chars, ngrams, normalize, words
from sparring.evaluators.wordplay import same_word
from sparring.registry import register_env
from sparring.types import Prompt, Score

DEFAULT_SYSTEM_PROMPT = (
    "You write short original quotes. Answer in exactly three lines:\n"
    "Keyword: <the keyword>\nQuote: <one sentence>\n- <author>\nNothing else."
)
_KEYWORD = re.compile(r"^keyword\s*:\s*(.+)$", re.IGNORECASE)
_QUOTE = re.compile(r"^quote\s*:\s*(.+)$", re.IGNORECASE)
_AUTHOR = re.compile(r"^[-\u2013\u2014~]\s*(\S.*)$")
MIN_QUOTE, MAX_QUOTE = 20, 200


class QuotesOptions(EnvOptions):
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description="System message that asks for the three-line format ('' for none).")
    prompt_template: str = Field("Write a quote about {keyword}.", description="User message; {keyword} is replaced by the keyword.")
    corpus: str = Field("builtin", description="Reference quotes for novelty and keywords: 'builtin' or 'none'.")


def parse_quote(text: object) -> tuple[dict[str, str] | None, str]:
    """({"keyword", "quote", "author"}, reason) or (None, why it is not the format)."""
    raw = text if isinstance(text, str) else clean_unicode(text)
    if has_invalid_chars(raw):
        return None, "contains undecodable bytes or control characters"
    lines = [line.strip() for line in clean_unicode(raw).strip().splitlines() if line.strip()]
    if not lines:
        return None, "empty completion"
    if len(lines) != 3:
        return None, f"{len(lines)} lines (exactly 3 expected: Keyword, Quote, - Author)"
    k, q, a = _KEYWORD.match(lines[0]), _QUOTE.match(lines[1]), _AUTHOR.match(lines[2])
    if not k:
        return None, "first line is not 'Keyword: ...'"
    if not q:
        return None, "second line is not 'Quote: ...'"
    if not a:
        return None, "third line is not '- Author'"
    quote = q.group(1).strip().strip("\"'\u201c\u201d").strip()
    return {"keyword": k.group(1).strip(), "quote": quote, "author": a.group(1).strip()}, "three lines"


@register_env("quotes")
class QuotesEnv(Env):
    Options = QuotesOptions
    name = "quotes"

    def __init__(self, options: QuotesOptions | None = None):
        super().__init__(options)
        self._refs: list[dict[str, Any]] | None = None

    def _corpus(self) -> list[dict[str, Any]]:
        if self._refs is None:
            if self.options.corpus == "none":
                self._refs = []
            else:
                from sparring.sft.corpus import load_quotes

                self._refs = [dict(q, _grams=frozenset(ngrams(words(q["quote"]), 3)), _norm=normalize(q["quote"])) for q in load_quotes()]
        return self._refs

    @staticmethod
    def _split_of(keyword: str) -> str:
        return split_of(keyword)

    def prompts(self, split: str = "train", seed: int = 0) -> Iterator[Prompt]:
        require_split(split)
        keywords = sorted({str(q["keyword"]).strip().lower() for q in self._corpus()})
        for i, keyword in enumerate(seeded_order([k for k in keywords if split_of(k) == split], seed)):
            yield self._prompt(keyword, f"quotes-{split}-{i}")

    def _prompt(self, keyword: str, prompt_id: str) -> Prompt:
        messages = []
        if self.options.system_prompt:
            messages.append({"role": "system", "content": self.options.system_prompt})
        messages.append({"role": "user", "content": self.options.prompt_template.replace("{keyword}", keyword)})
        return Prompt(id=prompt_id, messages=tuple(messages), meta={"env": "quotes", "keyword": keyword})

    def make_prompt(self, text: str | None = None, **fields: Any) -> Prompt:
        keyword = fields.get("keyword") or fields.get("topic")
        if keyword is None and text:
            m = re.search(r"\babout\s+(.+?)\s*[.!?]*\s*$", clean_unicode(text).strip().splitlines()[0])
            keyword = m.group(1) if m else None
        if not keyword or "\n" in str(keyword):
            raise UserInputError("no keyword given", where="--topic/--prompt", fix='pass --topic courage or --prompt "Write a quote about courage."')
        return self._prompt(str(keyword).strip(), "cli")

    def score(self, prompt: Prompt, completion: str) -> Score:
        try:
            return self._score(prompt, completion)
        except Exception as exc:  # never crash on model output
            return Score(0.0, {"format": 0.0}, False, {"error": repr(exc)})

    def _score(self, prompt: Prompt, completion: str) -> Score:
        parsed, reason = parse_quote(completion)
        keyword = str(prompt.meta.get("keyword", ""))
        bad = find_profanity(clean_unicode(completion))
        if parsed is None:
            comps = {"format": 0.0, "keyword": 0.0, "length": 0.0, "clean": float(not bad), "novelty": 0.0}
            return Score(0.0, comps, False, {"format": reason})
        kw_words = words(keyword)
        line_ok = words(parsed["keyword"]) == kw_words
        quote_words = words(parsed["quote"])
        used = bool(kw_words) and all(any(same_word(k, w) for w in quote_words) for k in kw_words)
        n = len(parsed["quote"])
        length_ok = MIN_QUOTE <= n <= MAX_QUOTE
        grams = set(ngrams(quote_words, 3))
        overlap = 0.0
        norm = normalize(parsed["quote"])
        for ref in self._corpus():
            if ref["_norm"] == norm:
                overlap = 1.0
                break
            overlap = max(overlap, containment(grams, set(ref["_grams"])))
        novelty = round(1.0 - overlap, 4)
        comps = {
            "format": 1.0,
            "keyword": 1.0 if (line_ok and used) else 0.5 if (line_ok or used) else 0.0,
            "length": 1.0 if length_ok else 0.0,
            "clean": float(not bad),
            "novelty": novelty,
        }
        total = comps["format"] * comps["clean"] * (comps["keyword"] + comps["length"] + comps["novelty"]) / 3
        passed = comps["keyword"] == 1.0 and length_ok and not bad and novelty >= 0.5
        details = {"parsed": parsed, "quote_chars": n, "keyword_line": line_ok, "keyword_in_quote": used, "profanity": bad}
        return Score(round(total, 4), comps, passed, details)
