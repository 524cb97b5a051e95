"""Cleaning exported samples: scrub contact details, drop short and near-duplicate samples.

Scrubbing replaces e-mail addresses with ``[email]`` and phone numbers with ``[phone]``. The
phone pattern only takes what is shaped like a phone number: 7 to 15 digits in groups, with a
leading ``+``, an area code in parentheses or separators between the groups. Numbers that
merely have many digits are left alone: years and year ranges, dates, prices and decimals,
thousands written with separators, IP addresses, step numbers and bare digit runs (IDs,
timestamps), since a training set that loses its numbers is worse than one that keeps an odd
phone number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from personahub.dedup import MinHashDeduper
from personahub.dedup.minhash import tokenize
from sandbox.export.samples import Sample

EMAIL_TOKEN = "[email]"
PHONE_TOKEN = "[phone]"
DEDUP_THRESHOLD = 0.9
SHINGLE_WORDS = 3

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_PHONE = re.compile(
    r"""
    (?<![\w$€£¥@/.:,+\-])          # not inside a word, a price, a path or a longer number
    (?:\+\d{1,3}[ .\-]?)?          # country code
    (?:\(\d{1,5}\)[ .\-]?)?        # area code in parentheses
    \d{1,5}(?:[ .\-]\d{1,6}){0,5}  # digit groups with single separators
    (?![\w@/%]|[.,:\-]\d)          # not followed by more of a number, a unit or a path
    """,
    re.VERBOSE,
)
_YEAR = re.compile(r"(?:1[89]|20)\d\d")
_DATE_SHAPES = ((4, 2, 2), (4, 1, 1), (4, 1, 2), (4, 2, 1))


def _is_phone(text: str) -> bool:
    """Whether a candidate matched by ``_PHONE`` really is a phone number."""
    digits = sum(c.isdigit() for c in text)
    marked = text.startswith("+") or "(" in text
    groups = re.findall(r"\d+", text)
    if not 7 <= digits <= 15 or (len(groups) < 2 and not marked):
        return False
    if marked:
        return True
    sizes = tuple(len(g) for g in groups)
    separators = set(re.findall(r"[ .\-]", text))
    if all(_YEAR.fullmatch(g) for g in groups):
        return False  # 2019-2024, "2020 2021 2022"
    if sizes in _DATE_SHAPES or sizes[::-1] in _DATE_SHAPES:
        return False  # 2024-05-01, 01.05.2024
    if any(size == 1 for size in sizes[1:]):
        return False  # 978-3-16-148410-0 (phone groups after the first have 2+ digits)
    if len(groups) == 2 and separators == {"."}:
        return False  # 12345.67
    if len(groups) == 4 and separators == {"."} and max(sizes) <= 3:
        return False  # 192.168.10.1
    if separators <= {" ", "."} and sizes[0] <= 3 and all(s == 3 for s in sizes[1:]):
        return False  # 1 250 000, 2.500.000
    # Spaces also separate plain numbers in prose ("in 2024 1500 people"): ask for more digits.
    return " " not in separators or digits >= 9


def scrub_text(text: str) -> tuple[str, int]:
    """``text`` with e-mail addresses and phone numbers replaced, and how many were."""
    text, emails = _EMAIL.subn(EMAIL_TOKEN, text)
    phones = 0

    def phone(match: re.Match[str]) -> str:
        nonlocal phones
        if not _is_phone(match.group()):
            return match.group()
        phones += 1
        return PHONE_TOKEN

    return _PHONE.sub(phone, text), emails + phones


def scrub(sample: Sample) -> Sample:
    """Scrub every message of ``sample`` in place; sets ``sample.scrubbed``."""
    for message in sample.messages:
        message["content"], found = scrub_text(message["content"])
        sample.scrubbed = sample.scrubbed or found > 0
    return sample


def long_enough(samples: Sequence[Sample], min_turns: int) -> list[bool]:
    """For each sample, whether it has at least ``min_turns`` non-system messages."""
    return [sample.turns >= min_turns for sample in samples]


def shingles(text: str, n: int = SHINGLE_WORDS) -> list[str]:
    """The word n-grams of ``text``, each as one ``\\w+`` token (``a_b_c``)."""
    words = tokenize(text)
    return ["_".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]


def first_of_near_duplicates(
    samples: Sequence[Sample], threshold: float = DEDUP_THRESHOLD
) -> list[bool]:
    """For each sample, False when an earlier one is a near-duplicate of it (MinHash).

    Near-duplicates share their system prompt (the same speaker), and the word 3-grams of
    their other messages have a Jaccard similarity of at least ``threshold``. Whole samples
    compared as word sets would make duplicates of most samples of a run: the agents' prompt
    template outweighs the persona, the news of the day and the reply. The same reply under
    another persona is a different training sample, hence the speaker: its tag on every
    shingle keeps speakers apart in one MinHash index.
    """
    speakers: dict[str, int] = {}
    texts = []
    for sample in samples:
        has_system = bool(sample.messages) and sample.messages[0]["role"] == "system"
        tag = speakers.setdefault(
            sample.messages[0]["content"] if has_system else "", len(speakers)
        )
        rest = "\n".join(m["content"] for m in sample.messages[has_system:])
        texts.append(" ".join(f"s{tag}_{shingle}" for shingle in shingles(rest)))
    deduper = MinHashDeduper(threshold=threshold)
    return deduper.add_batch(list(range(len(samples))), texts)
