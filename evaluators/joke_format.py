"""Parse a completion into one question/answer joke, or say exactly why it is not one.

Accepted shapes (after stripping a short leading/trailing whitespace)::

    Q: Why did the cookie go to the doctor?        Why did the cookie go to the doctor?
    A: Because it felt crummy!                     Because it felt crummy!

Labels may be ``Q:``/``A:`` or ``Question:``/``Answer:`` (markdown bold around them is tolerated),
blank lines between the two lines are tolerated, anything else is not: a single line, a third
line, a second joke, a question line without "?", an empty answer, more than 16 characters of
surrounding whitespace, lone surrogates or control characters.  Never raises.
Exercised by ``pytest tests/evaluators/test_joke_validator.py -k format``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparring.evaluators.text_metrics import clean_unicode, has_invalid_chars

MAX_SURROUNDING_WHITESPACE = 16
_Q_LABEL = re.compile(r"^[*_]{0,2}\s*(q|question)\s*:[*_]{0,2}\s*", re.IGNORECASE)
_A_LABEL = re.compile(r"^[*_]{0,2}\s*(a|answer)\s*:[*_]{0,2}\s*", re.IGNORECASE)
_INLINE_Q = re.compile(r"(^|\s)(q|question)\s*:", re.IGNORECASE)
_QUESTION_END = re.compile(r"\?[\"'\u201d\u2019)\]*_]*\s*$")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class ParsedJoke:
    ok: bool
    reason: str
    question: str = ""
    answer: str = ""

    @property
    def joke(self) -> str:
        """The joke without labels: question, newline, answer (what the length rule measures)."""
        return f"{self.question}\n{self.answer}" if self.ok else ""


def _strip_label(line: str, label: re.Pattern[str]) -> tuple[str, bool]:
    m = label.match(line)
    if not m:
        return line.strip(), False
    return line[m.end() :].strip().strip("*_").strip(), True


def parse_joke(text: object) -> ParsedJoke:
    """Split ``text`` into (question, answer) when it is exactly one Q/A joke."""
    raw = clean_unicode(text)
    if isinstance(text, str) and has_invalid_chars(text):
        return ParsedJoke(False, "contains undecodable bytes (lone surrogates) or control characters")
    stripped = raw.strip()
    if not stripped:
        return ParsedJoke(False, "empty completion")
    lead = len(raw) - len(raw.lstrip())
    trail = len(raw) - len(raw.rstrip())
    if lead > MAX_SURROUNDING_WHITESPACE or trail > MAX_SURROUNDING_WHITESPACE:
        return ParsedJoke(False, f"{max(lead, trail)} characters of surrounding whitespace (at most {MAX_SURROUNDING_WHITESPACE})")
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(lines) == 1:
        return ParsedJoke(False, "one line only: the question and the answer must be on two lines")
    if len(lines) > 2:
        questions = sum(1 for line in lines if _Q_LABEL.match(line) or _QUESTION_END.search(line))
        what = f"{questions} questions: exactly one joke expected" if questions > 1 else "extra lines after the joke"
        return ParsedJoke(False, f"{len(lines)} lines ({what})")
    q_line, a_line = lines
    if _A_LABEL.match(q_line) and not _Q_LABEL.match(q_line):
        return ParsedJoke(False, "the first line is an answer ('A:'), not a question")
    question, _ = _strip_label(q_line, _Q_LABEL)
    answer, _ = _strip_label(a_line, _A_LABEL)
    if _Q_LABEL.match(a_line) or _INLINE_Q.search(answer):
        return ParsedJoke(False, "the answer line holds another question ('Q:'): exactly one joke expected")
    if not _QUESTION_END.search(question) or not _LETTER.search(question):
        return ParsedJoke(False, "the first line is not a question ending in '?'")
    if not _LETTER.search(answer):
        return ParsedJoke(False, "empty answer")
    return ParsedJoke(True, "question line + answer line", question=question, answer=answer)
