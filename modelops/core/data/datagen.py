"""Deterministic synthetic corpus for the default task (customer-support ticket routing) and drift scenarios.

Every row is rendered from its own `random.Random`, seeded from one `numpy.random.default_rng(seed)` stream that
also draws the intents, the scenario membership and the label noise. The draws are identical for every scenario,
so a scenario at severity 0 reproduces `generate_corpus(n, seed)` byte for byte, and a small severity changes
only a small share of rows. No global random state is touched.

Baseline class mix (before label noise), moderately imbalanced, `fraud_report` the rare urgent class:

    shipping 16%, billing 14%, technical_issue 14%, refund 12%, account_access 12%,
    product_question 9%, cancellation 8%, complaint 6%, fraud_report 5%, address_change 4%

About 25% of texts carry PII in conventional formats (e-mail, phone, Luhn-valid card, IBAN with valid check
digits); about 7% carry one or two typos; texts stay under 1,900 characters in every scenario.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelops.core.data import datagen_templates as tables
from modelops.core.data.drift_scenarios import SCENARIOS

logger = logging.getLogger(__name__)

INTENTS: tuple[str, ...] = ("billing", "refund", "shipping", "account_access", "technical_issue",
                            "cancellation", "product_question", "complaint", "fraud_report", "address_change")

BASE_PRIORS: dict[str, float] = {
    "billing": 0.14, "refund": 0.12, "shipping": 0.16, "account_access": 0.12, "technical_issue": 0.14,
    "cancellation": 0.08, "product_question": 0.09, "complaint": 0.06, "fraud_report": 0.05, "address_change": 0.04,
}
# A delivery outage: shipping and complaint surge, refunds and cancellations follow.
OUTAGE_PRIORS: dict[str, float] = {
    "billing": 0.06, "refund": 0.14, "shipping": 0.34, "account_access": 0.05, "technical_issue": 0.05,
    "cancellation": 0.08, "product_question": 0.03, "complaint": 0.20, "fraud_report": 0.03, "address_change": 0.02,
}

PII_RATE = 0.25
TYPO_RATE = 0.07
MAX_TEXT_CHARS = 1900
SCENARIO_LABEL_NOISE = 0.03  # the default of generate_corpus, so severity 0 reproduces it


class UnknownScenarioError(ValueError):
    """A drift scenario name that `generate_scenario` does not know."""


Rng = random.Random
Filler = Callable[[Rng], str]


def _pick(rng: Rng, options: Sequence[str]) -> str:
    """`rng.choice` without its per-call overhead (the generator renders ~100k slots per second)."""
    return options[int(rng.random() * len(options))]


def _int(rng: Rng, low: int, high: int) -> int:
    """Uniform integer in [low, high], like `rng.randint` but cheaper."""
    return low + int(rng.random() * (high - low + 1))


def _digits(rng: Rng, k: int) -> str:
    chunks = [f"{int(rng.random() * 1e9):09d}" for _ in range(-(-k // 9))]
    return "".join(chunks)[:k]


def _order(rng: Rng) -> str:
    return f"#{_pick(rng, tables.ORDER_LETTERS)}{_int(rng, 10000, 99999)}"


def _amount(rng: Rng) -> str:
    value = f"{_int(rng, 5, 899)}.{_pick(rng, tables.CENTS)}"
    return _pick(rng, ("${}", "€{}", "£{}", "{} USD", "{} EUR")).format(value)


def _amount_de(rng: Rng) -> str:
    return f"{_int(rng, 5, 899)},{_pick(rng, tables.CENTS)} €"


def _date(rng: Rng) -> str:
    day, month = _int(rng, 1, 28), _int(rng, 1, 12)
    style = int(rng.random() * 5)
    if style == 0:
        return f"{tables.MONTHS[month - 1]} {day}"
    if style == 1:
        return f"{day} {tables.MONTHS[month - 1]}"
    if style == 2:
        return f"2024-{month:02d}-{day:02d}"
    return f"{day:02d}/{month:02d}" if style == 3 else _pick(rng, tables.RELATIVE_DAYS)


def _date_de(rng: Rng) -> str:
    day, month = _int(rng, 1, 28), _int(rng, 1, 12)
    return f"{day:02d}.{month:02d}.2024" if rng.random() < 0.5 else f"{day}. {tables.MONTHS_DE[month - 1]}"


def _email(rng: Rng) -> str:
    first, last = _pick(rng, tables.NAMES).lower(), _pick(rng, tables.SURNAMES)
    local = _pick(rng, (f"{first}.{last}", f"{first}{_int(rng, 1, 99)}", f"{first[0]}{last}", f"{first}_{last}"))
    return f"{local}@{_pick(rng, tables.MAIL_DOMAINS)}"


def _phone(rng: Rng) -> str:
    """Conventional national or international formats with 10 to 13 digits."""
    pattern, k = tables.PHONE_FORMATS[int(rng.random() * len(tables.PHONE_FORMATS))]
    digits = _digits(rng, k)
    return pattern.format(digits[:3], digits[3:]) if "{1}" in pattern else pattern.format(digits)


def luhn_check_digit(payload: str) -> str:
    """The Luhn check digit that makes `payload + digit` valid."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def _card(rng: Rng) -> str:
    """A Luhn-valid 16-digit Visa/Mastercard-like number, grouped by spaces or dashes."""
    payload = _pick(rng, ("4", "4", "51", "52", "53", "54", "55"))
    payload += _digits(rng, 15 - len(payload))
    number = payload + luhn_check_digit(payload)
    return _pick(rng, (" ", "-")).join(number[i:i + 4] for i in range(0, 16, 4))


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 mod-97 check digits for a country code and BBAN."""
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


def _iban(rng: Rng) -> str:
    """An IBAN with valid check digits (DE, ES, FR, GB, NL), usually grouped in fours."""
    country, bank, k = tables.IBAN_LAYOUTS[int(rng.random() * len(tables.IBAN_LAYOUTS))]
    bban = (_pick(rng, bank) if bank else "") + _digits(rng, k)
    compact = country + iban_check_digits(country, bban) + bban
    if rng.random() < 0.2:
        return compact
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


SLOT_FILLERS: dict[str, Filler] = {
    "order": _order, "amount": _amount, "amount_de": _amount_de, "date": _date, "date_de": _date_de,
    "email": _email, "phone": _phone, "card": _card, "iban": _iban,
    "product": lambda r: _pick(r, tables.PRODUCTS), "product_de": lambda r: _pick(r, tables.PRODUCTS_DE),
    "new_product": lambda r: _pick(r, tables.NEW_PRODUCTS), "plan": lambda r: _pick(r, tables.PLANS),
    "plan_de": lambda r: _pick(r, tables.PLANS_DE), "device": lambda r: _pick(r, tables.DEVICES),
    "error": lambda r: _pick(r, tables.ERRORS), "carrier": lambda r: _pick(r, tables.CARRIERS),
    "city": lambda r: _pick(r, tables.CITIES), "city_de": lambda r: _pick(r, tables.CITIES_DE),
    "street": lambda r: f"{_int(r, 1, 240)} {_pick(r, tables.STREETS)}",
    "street_de": lambda r: f"{_pick(r, tables.STREETS_DE)} {_int(r, 1, 120)}",
    "name": lambda r: _pick(r, tables.NAMES), "days": lambda r: _pick(r, tables.DAY_WORDS),
    "years": lambda r: str(_int(r, 2, 15)), "ticket": lambda r: f"T-{_int(r, 100000, 999999)}",
    "flat": lambda r: f"{_int(r, 1, 40)}{_pick(r, 'ABCD')}",
}
_SLOT = re.compile(r"\{(\w+)\}")
_SLOT_SPLIT = re.compile(r"(\{\w+\})")

# ---------------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Language:
    templates: dict[str, tuple[str, ...]]
    openings: tuple[str, ...]
    closings: tuple[str, ...]
    pii: dict[str, tuple[str, ...]]


ENGLISH = _Language(tables.EN_TEMPLATES, tables.EN_OPENINGS, tables.EN_CLOSINGS, tables.EN_PII)
GERMAN = _Language(tables.DE_TEMPLATES, tables.DE_OPENINGS, tables.DE_CLOSINGS, tables.DE_PII)


def _casing(intent: str, rng: Rng) -> Callable[[str], str] | None:
    """Lower-case ~17% of tickets and shout ~3% (10% for complaints and fraud); None keeps the template's case."""
    roll = rng.random()
    shout = 0.10 if intent in ("complaint", "fraud_report") else 0.03
    if roll < shout:
        return str.upper
    return str.lower if roll < shout + 0.17 else None


def _recase(skeleton: str, case: Callable[[str], str] | None) -> str:
    """Apply `case` to the template text only, never to slot placeholders (filled later)."""
    if case is None:
        return skeleton
    return "".join(p if p.startswith("{") else case(p) for p in _SLOT_SPLIT.split(skeleton))


def _fill(skeleton: str, rng: Rng) -> str:
    if "{" not in skeleton:
        return skeleton
    return _SLOT.sub(lambda m: SLOT_FILLERS[m.group(1)](rng), skeleton)


def _add_typos(text: str, rng: Rng) -> str:
    """One or two character swaps or drops inside plain words (slot placeholders are not plain words)."""
    words = text.split(" ")
    eligible = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    for i in rng.sample(eligible, min(len(eligible), 2 if rng.random() < 0.3 else 1)):
        w = words[i]
        pos = _int(rng, 1, len(w) - 2)
        words[i] = w[:pos] + w[pos + 1] + w[pos] + w[pos + 2:] if rng.random() < 0.5 else w[:pos] + w[pos + 1:]
    return " ".join(words)


def _pii_sentences(intent: str, language: _Language, rng: Rng) -> list[str]:
    """One (sometimes two) sentences carrying PII; the kind mix depends on the intent."""
    kinds = ("email", "phone", "card", "iban")
    weights = tables.PII_KIND_WEIGHTS.get(intent, tables.DEFAULT_PII_WEIGHTS)
    chosen = rng.choices(kinds, weights=weights, k=2 if rng.random() < 0.2 else 1)
    return [_pick(rng, language.pii[kind]) for kind in dict.fromkeys(chosen)]


def _body(intent: str, language: _Language, rng: Rng, new_product: bool) -> list[str]:
    """The request itself, in English often followed by a detail sentence (or a side remark on another topic)."""
    templates = tables.NEW_PRODUCT_TEMPLATES if new_product else language.templates
    parts = [_pick(rng, templates[intent])]
    if language is not ENGLISH:
        return parts
    roll = rng.random()
    if roll < 0.3:
        parts.append(_pick(rng, tables.EN_DETAILS[intent]))
    elif roll < 0.36:  # a side remark about another topic; the label stays the main request
        other = _pick(rng, [i for i in INTENTS if i != intent])
        detail = _pick(rng, tables.EN_DETAILS[other])
        parts.append("Also, " + (detail if detail.startswith(("I ", "I'")) else detail[0].lower() + detail[1:]))
    return parts


def _history_line(rng: Rng) -> str:
    """One pasted order row; every field comes from a single 64-bit draw (long tickets paste many rows)."""
    bits = rng.getrandbits(64)
    bits, letter = divmod(bits, len(tables.ORDER_LETTERS))
    bits, number = divmod(bits, 90000)
    bits, month = divmod(bits, 12)
    bits, day = divmod(bits, 28)
    bits, product = divmod(bits, len(tables.PRODUCTS))
    bits, euros = divmod(bits, 895)
    bits, cents = divmod(bits, len(tables.CENTS))
    status = bits % len(tables.HISTORY_STATUSES)
    return (f"Order #{tables.ORDER_LETTERS[letter]}{number + 10000} | 2024-{month + 1:02d}-{day + 1:02d} | "
            f"{tables.PRODUCTS[product]} | ${euros + 5}.{tables.CENTS[cents]} | {tables.HISTORY_STATUSES[status]}")


def _long_context(rng: Rng, severity: float, case: Callable[[str], str] | None) -> Iterator[str]:
    """Extra context sentences, then often a pasted order history (rows not re-cased); both grow with severity.

    Yields each piece with its leading separator, lazily, so the caller stops drawing at the length cap.
    """
    count = min(2 + round(severity * 6) + _int(rng, 0, 2), len(tables.LONG_CONTEXT))
    for sentence in rng.sample(tables.LONG_CONTEXT, count):
        yield " " + _fill(_recase(sentence, case), rng)
    if rng.random() < 0.3 + 0.6 * severity:
        yield " " + _recase("For reference, here is my order history:", case)
        for _ in range(2 + round(severity * 6) + _int(rng, 0, 2)):
            yield "\n" + _history_line(rng)


def _render(intent: str, rng: Rng, *, language: _Language = ENGLISH, new_product: bool = False,
            long_severity: float | None = None) -> str:
    """One ticket: opening, body, optional PII, [long context], closing.

    Casing and typos are applied to the template text before the slots are filled, so PII, order numbers and
    amounts always keep their conventional format.
    """
    case = _casing(intent, rng)
    head = [_pick(rng, language.openings), *_body(intent, language, rng, new_product)]
    if rng.random() < PII_RATE:
        head += _pii_sentences(intent, language, rng)
    skeleton = _recase(" ".join(p for p in head if p), case)
    closing = _recase(_pick(rng, language.closings), case)
    if rng.random() < TYPO_RATE:
        skeleton = _add_typos(skeleton, rng)
    text, closing = _fill(skeleton, rng), _fill(closing, rng)
    if long_severity is not None:
        pieces, used = [text], len(text) + len(closing) + 1
        for addition in _long_context(rng, long_severity, case):
            if used + len(addition) > MAX_TEXT_CHARS:
                break
            pieces.append(addition)
            used += len(addition)
        text = "".join(pieces)
    return f"{text} {closing}" if closing else text

# --------------------------------------------------------------------------------------------------- generation


def _check_common(n: int, seed: int, label_noise: float) -> None:
    """Raise ValueError naming the bad argument and the accepted range."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of rows, got {n!r}.")
    if isinstance(label_noise, bool) or not (isinstance(label_noise, (int, float)) and 0.0 <= label_noise <= 1.0):
        raise ValueError(f"label_noise must be a fraction in [0, 1], got {label_noise!r}.")


def _priors(scenario: str | None, severity: float) -> np.ndarray:
    base = np.array([BASE_PRIORS[i] for i in INTENTS])
    if scenario != "prior_shift":
        return base / base.sum()
    shifted = np.array([OUTAGE_PRIORS[i] for i in INTENTS])
    mixed = (1.0 - severity) * base + severity * shifted
    return mixed / mixed.sum()


def _render_row(intent: str, row_seed: int, affected: bool, scenario: str | None, severity: float) -> str:
    rng = random.Random(row_seed)
    if not affected:
        return _render(intent, rng)
    if scenario == "new_product":
        return _render(intent, rng, new_product=True)
    if scenario == "language_shift":
        return _render(intent, rng, language=GERMAN)
    return _render(intent, rng, long_severity=severity)


def _generate(n: int, seed: int, label_noise: float, scenario: str | None, severity: float) -> pd.DataFrame:
    """Shared generator: the random draws never depend on the scenario, only their use does."""
    master = np.random.default_rng(seed)
    u_intent = master.random(n)
    u_affected = master.random(n)
    row_seeds = master.integers(0, 2**62, size=n)
    n_noisy = round(n * label_noise)
    noisy_rows = master.choice(n, size=n_noisy, replace=False)
    noise_offsets = master.integers(1, len(INTENTS), size=n_noisy)

    cumulative = np.cumsum(_priors(scenario, severity))
    codes = np.minimum(np.searchsorted(cumulative, u_intent, side="right"), len(INTENTS) - 1)
    row_level = scenario in ("new_product", "language_shift", "length_shift")
    affected = (u_affected < severity) if row_level else np.zeros(n, dtype=bool)
    texts = [_render_row(INTENTS[c], int(s), bool(a), scenario, severity)
             for c, s, a in zip(codes, row_seeds, affected)]
    codes[noisy_rows] = (codes[noisy_rows] + noise_offsets) % len(INTENTS)
    labels = [INTENTS[c] for c in codes]
    logger.debug("generated %d rows (seed %d, scenario %s, severity %.2f)", n, seed, scenario, severity)
    return pd.DataFrame({"text": pd.Series(texts, dtype=object), "label": pd.Series(labels, dtype=object)})


def generate_corpus(n: int, seed: int = 0, label_noise: float = 0.03) -> pd.DataFrame:
    """`n` labelled support tickets (columns `text`, `label`); a `label_noise` share gets a wrong label."""
    _check_common(n, seed, label_noise)
    return _generate(int(n), int(seed), float(label_noise), None, 0.0)


def generate_scenario(name: str, n: int, seed: int = 0, severity: float = 1.0) -> pd.DataFrame:
    """`n` tickets under drift scenario `name` (see `SCENARIOS`); severity 0 reproduces `generate_corpus(n, seed)`."""
    if name not in SCENARIOS:
        raise UnknownScenarioError(f"Unknown drift scenario {name!r}; known scenarios: {', '.join(sorted(SCENARIOS))}.")
    severity = check_severity(severity)
    _check_common(n, seed, SCENARIO_LABEL_NOISE)
    return _generate(int(n), int(seed), SCENARIO_LABEL_NOISE, name, severity)


def check_severity(severity: object) -> float:
    """`severity` as a float in [0, 1] (0 = baseline, 1 = full drift); anything else is a ValueError saying so."""
    if not (isinstance(severity, (int, float)) and not isinstance(severity, bool) and math.isfinite(severity)
            and 0.0 <= severity <= 1.0):
        raise ValueError(f"severity must be a number in [0, 1] (0 = baseline, 1 = full drift), got {severity!r}.")
    return float(severity)
