"""Synthetic support-ticket corpus and drift scenarios: determinism, realism, PII formats, scenario effects."""

from __future__ import annotations

import math
import re
from collections import Counter

import pandas as pd
import pytest

from modelops.core.data import datagen
from modelops.core.data import datagen_templates as tables
from modelops.core.data.datagen import INTENTS, UnknownScenarioError, generate_corpus, generate_scenario
from modelops.core.data.drift_scenarios import SCENARIOS, DriftScenario

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b")
CARD = re.compile(r"(?<![\d-])\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?![\d-])")
IBAN = re.compile(r"\b([A-Z]{2})(\d{2}) ?((?:[A-Z0-9]{4} ?){2,7}[A-Z0-9]{1,4})\b")
PHONE = re.compile(r"\+\d{1,3}[ -]\(?\d|\(\d{3}\) \d{3}-\d{4}|(?<![\w.-])0\d{2,4}(?: \d{3,8}){1,2}\b")
UMLAUT = re.compile(r"[äöüßÄÖÜ]")
N = 4000


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return generate_corpus(N, seed=7)


def _luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def _iban_valid(match: re.Match[str]) -> bool:
    country, check, bban = match.group(1), match.group(2), match.group(3).replace(" ", "")
    return int("".join(str(int(c, 36)) for c in bban + country + check)) % 97 == 1


def _share(texts: pd.Series, pattern: re.Pattern[str]) -> float:
    return float(texts.map(lambda t: bool(pattern.search(t))).mean())


def _words(texts: pd.Series) -> set[str]:
    return {w for t in texts for w in re.findall(r"[^\W\d_]+", t.lower())}


def _pii_found(text: str) -> dict[str, list[str]]:
    """PII by kind, IBANs and cards first and masked, so their digit groups are not counted twice."""
    found: dict[str, list[str]] = {}
    for kind, pattern in (("iban", IBAN), ("card", CARD), ("email", EMAIL), ("phone", PHONE)):
        found[kind] = [m.group() for m in pattern.finditer(text)]
        text = pattern.sub(" <PII> ", text)
    return found


# ------------------------------------------------------------------------------------------------ shape and API


def test_columns_dtypes_and_labels(corpus: pd.DataFrame) -> None:
    assert list(corpus.columns) == ["text", "label"]
    assert len(corpus) == N
    assert pd.api.types.is_string_dtype(corpus["text"]) and pd.api.types.is_string_dtype(corpus["label"])
    assert corpus.map(lambda v: isinstance(v, str)).all().all()
    assert set(corpus["label"]) == set(INTENTS)
    assert (corpus["text"].str.len() > 0).all() and (corpus["text"] == corpus["text"].str.strip()).all()


def test_intents_and_scenarios_are_the_published_names() -> None:
    assert INTENTS == ("billing", "refund", "shipping", "account_access", "technical_issue", "cancellation",
                       "product_question", "complaint", "fraud_report", "address_change")
    assert set(SCENARIOS) == {"new_product", "prior_shift", "language_shift", "length_shift"}
    for key, scenario in SCENARIOS.items():
        assert isinstance(scenario, DriftScenario) and scenario.name == key
        assert scenario.description and scenario.expected_effect


def test_many_templates_per_intent() -> None:
    assert all(len(tables.EN_TEMPLATES[i]) >= 12 for i in INTENTS)
    assert all(len(tables.DE_TEMPLATES[i]) >= 6 and len(tables.NEW_PRODUCT_TEMPLATES[i]) >= 4 for i in INTENTS)


# ------------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_csv_bytes() -> None:
    assert generate_corpus(1500, seed=3).to_csv(index=False) == generate_corpus(1500, seed=3).to_csv(index=False)
    for name in SCENARIOS:
        first = generate_scenario(name, 500, seed=3, severity=0.6).to_csv(index=False)
        assert first == generate_scenario(name, 500, seed=3, severity=0.6).to_csv(index=False)


def test_different_seeds_give_different_data() -> None:
    a, b = generate_corpus(1000, seed=1), generate_corpus(1000, seed=2)
    assert (a["text"] != b["text"]).mean() > 0.95
    long_a, long_b = (generate_scenario("length_shift", 200, seed=s) for s in (1, 2))
    assert long_a.to_csv(index=False) != long_b.to_csv(index=False)


def test_csv_round_trip_preserves_texts(tmp_path) -> None:
    frame = generate_scenario("length_shift", 300, seed=5, severity=1.0)  # includes newlines (pasted history)
    frame.to_csv(tmp_path / "c.csv", index=False)
    back = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, frame)


# ------------------------------------------------------------------------------------------------------ realism


def test_class_mix_is_moderately_imbalanced_with_rare_fraud() -> None:
    shares = generate_corpus(20_000, seed=11, label_noise=0.0)["label"].value_counts(normalize=True)
    for intent, prior in datagen.BASE_PRIORS.items():
        assert shares[intent] == pytest.approx(prior, abs=0.012), intent
    assert 0.035 < shares["fraud_report"] < 0.065
    assert shares.max() / shares.min() < 6


def test_label_noise_flips_exactly_the_requested_fraction_to_a_different_label() -> None:
    clean = generate_corpus(3000, seed=4, label_noise=0.0)
    for noise in (0.03, 0.1):
        noisy = generate_corpus(3000, seed=4, label_noise=noise)
        assert (noisy["text"] == clean["text"]).all()
        assert (noisy["label"] != clean["label"]).mean() == pytest.approx(noise, abs=1 / 3000)
        assert set(noisy["label"]) <= set(INTENTS)
    default = generate_corpus(3000, seed=4)
    assert (default["label"] != clean["label"]).mean() == pytest.approx(0.03, abs=1 / 3000)


def test_texts_vary_in_length_casing_and_are_mostly_unique(corpus: pd.DataFrame) -> None:
    lengths = corpus["text"].str.len()
    assert lengths.quantile(0.1) < 80 and lengths.quantile(0.9) > 140 and lengths.max() < 400
    assert corpus["text"].str.lower().nunique() / len(corpus) > 0.97
    assert corpus["text"].str.match(r"[a-z]").mean() > 0.08  # all-lowercase tickets
    assert corpus["text"].map(lambda t: t[:20].isupper()).mean() > 0.01  # SHOUTING tickets


def test_order_numbers_amounts_and_dates_appear(corpus: pd.DataFrame) -> None:
    assert _share(corpus["text"], re.compile(r"#[A-Z]\d{5}\b")) > 0.1
    assert _share(corpus["text"], re.compile(r"[$€£]\d+\.\d{2}|\d+\.\d{2} (?:USD|EUR)")) > 0.05
    assert _share(corpus["text"], re.compile(r"\b2024-\d{2}-\d{2}\b|\b\d{2}/\d{2}\b")) > 0.01


def test_typos_in_a_few_percent_of_texts(corpus: pd.DataFrame) -> None:
    sources = [*(t for ts in tables.EN_TEMPLATES.values() for t in ts),
               *(t for ts in tables.EN_DETAILS.values() for t in ts),
               *(t for ts in tables.EN_PII.values() for t in ts),
               *tables.EN_OPENINGS, *tables.EN_CLOSINGS, *tables.PRODUCTS, *tables.PLANS, *tables.DEVICES,
               *tables.ERRORS, *tables.CARRIERS, *tables.CITIES, *tables.STREETS, *tables.NAMES,
               *tables.SURNAMES, *tables.MAIL_DOMAINS, *tables.MONTHS, *tables.RELATIVE_DAYS,
               *tables.DAY_WORDS, "usd eur also"]
    vocabulary = _words(pd.Series(sources))

    def plain_words(text: str) -> set[str]:  # words outside e-mails, IBANs, order ids and other tokens with digits
        tokens = [tok for tok in text.lower().split() if not re.search(r"[\d@#]", tok)]
        return {w for tok in tokens for w in re.findall(r"[a-z]{3,}", tok)}

    with_unknown = corpus["text"].map(lambda t: bool(plain_words(t) - vocabulary)).mean()
    assert 0.03 < with_unknown < 0.12


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_intent_is_learnable_by_a_bag_of_words_classifier() -> None:
    """A tiny multinomial naive Bayes separates the intents; a sentence encoder has an easier job still."""
    train, test = generate_corpus(2000, seed=1, label_noise=0.0), generate_corpus(800, seed=2, label_noise=0.0)
    counts = {i: Counter(w for t in train.loc[train["label"] == i, "text"] for w in _tokens(t)) for i in INTENTS}
    vocabulary = set().union(*counts.values())
    totals = {i: sum(c.values()) + len(vocabulary) for i, c in counts.items()}
    log_prior = {i: math.log((train["label"] == i).mean()) for i in INTENTS}

    def predict(text: str) -> str:
        words = [w for w in _tokens(text) if w in vocabulary]
        return max(INTENTS, key=lambda i: log_prior[i] + sum(math.log((counts[i][w] + 1) / totals[i]) for w in words))

    accuracy = sum(predict(t) == label for t, label in zip(test["text"], test["label"])) / len(test)
    assert accuracy > 0.93


def test_no_single_keyword_identifies_an_intent() -> None:
    """For every intent, the best single word has recall or precision well below 1."""
    train = generate_corpus(2000, seed=1, label_noise=0.0)
    docs = [(set(_tokens(t)), label) for t, label in zip(train["text"], train["label"])]
    per_intent = Counter(label for _, label in docs)
    per_word = Counter(w for words, _ in docs for w in words)
    per_pair = Counter((w, label) for words, label in docs for w in words)
    for intent in INTENTS:
        best = max(min(per_pair[w, intent] / per_intent[intent], per_pair[w, intent] / per_word[w]) for w in per_word)
        assert best < 0.8, intent


# ---------------------------------------------------------------------------------------------------------- PII


def test_pii_present_at_expected_rates_in_conventional_formats(corpus: pd.DataFrame) -> None:
    found = corpus["text"].map(_pii_found)
    any_pii = found.map(lambda f: any(f.values())).mean()
    shares = {kind: found.map(lambda f, kind=kind: bool(f[kind])).mean() for kind in ("email", "phone", "card", "iban")}
    assert 0.2 <= any_pii <= 0.3, any_pii
    assert all(share > 0.02 for share in shares.values()), shares
    cards = [c for f in found for c in f["card"]]
    ibans = [m for f in found for i in f["iban"] if (m := IBAN.fullmatch(i))]
    assert cards and all(_luhn_valid(c) and len(re.sub(r"\D", "", c)) == 16 for c in cards)
    assert ibans and all(_iban_valid(m) for m in ibans)
    assert any("-" in c for c in cards) and any(" " in c for c in cards)
    assert any(m.group(1) == "DE" and " " in m.group() for m in ibans)


def test_curation_redacts_exactly_the_generated_pii() -> None:
    """The redaction regexes of curate.py find the PII and nothing else (no dates, amounts or order ids)."""
    from modelops.core.data.curate import redact_pii

    for frame in (generate_corpus(1200, seed=9), generate_scenario("length_shift", 300, seed=9),
                  generate_scenario("language_shift", 300, seed=9)):
        for text in frame["text"]:
            clean, counts = redact_pii(text)
            assert bool(counts) == any(_pii_found(text).values()), text
            assert not any(_pii_found(clean).values()), clean


# ---------------------------------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_severity_zero_reproduces_the_baseline(name: str) -> None:
    baseline = generate_corpus(800, seed=21).to_csv(index=False)
    assert generate_scenario(name, 800, seed=21, severity=0.0).to_csv(index=False) == baseline


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_keep_columns_and_labels(name: str) -> None:
    frame = generate_scenario(name, 600, seed=2, severity=1.0)
    assert list(frame.columns) == ["text", "label"] and len(frame) == 600
    assert set(frame["label"]) <= set(INTENTS)
    assert frame["text"].str.len().max() <= datagen.MAX_TEXT_CHARS


def _total_variation(a: pd.Series, b: pd.Series) -> float:
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    return 0.5 * float(sum(abs(pa.get(i, 0.0) - pb.get(i, 0.0)) for i in INTENTS))


def test_prior_shift_moves_the_label_mix_towards_shipping_and_complaints() -> None:
    base = generate_corpus(N, seed=5)["label"]
    half = generate_scenario("prior_shift", N, seed=5, severity=0.5)["label"]
    full = generate_scenario("prior_shift", N, seed=5, severity=1.0)["label"]
    assert 0.08 < _total_variation(base, half) < _total_variation(base, full)
    assert _total_variation(base, full) > 0.2
    surge = lambda s: s.isin(["shipping", "complaint"]).mean()  # noqa: E731
    assert surge(full) > surge(base) + 0.25
    assert set(full) == set(INTENTS)


def test_language_shift_adds_german_tickets_in_proportion_to_severity() -> None:
    german = _words(pd.Series([t for ts in tables.DE_TEMPLATES.values() for t in ts]))
    german -= _words(pd.Series([t for ts in tables.EN_TEMPLATES.values() for t in ts] + list(tables.PRODUCTS)))
    german_words = re.compile(r"\b(?:" + "|".join(sorted(w for w in german if len(w) >= 5)) + r")\b", re.IGNORECASE)
    base = generate_corpus(2000, seed=6)["text"]
    assert _share(base, UMLAUT) == 0.0 and _share(base, german_words) == 0.0
    for severity in (0.3, 1.0):
        shifted = generate_scenario("language_shift", 2000, seed=6, severity=severity)["text"]
        assert _share(shifted, german_words) == pytest.approx(severity, abs=0.04)
        assert _share(shifted, UMLAUT) > 0.5 * severity


def test_length_shift_makes_tickets_longer_with_severity() -> None:
    means = [generate_scenario("length_shift", 1500, seed=8, severity=s)["text"].str.len().mean()
             for s in (0.0, 0.25, 0.5, 1.0)]
    assert means == sorted(means)
    assert means[3] > 4 * means[0]
    full = generate_scenario("length_shift", 500, seed=8, severity=1.0)["text"]
    assert full.str.contains("order history:", case=False).mean() > 0.7


def test_new_product_introduces_vocabulary_the_baseline_never_uses() -> None:
    baseline_words = set().union(*(_words(generate_corpus(3000, seed=s)["text"]) for s in range(3)))
    new_words = {"esim", "thermostat", "roaming", "novatherm", "boiler"}
    assert not new_words & baseline_words
    for severity in (0.2, 1.0):
        shifted = generate_scenario("new_product", 2000, seed=1, severity=severity)
        assert new_words <= _words(shifted["text"])
        mentions = shifted["text"].str.contains(r"esim|thermostat|roaming|sim swap", case=False).mean()
        assert mentions == pytest.approx(severity, abs=0.05)
    assert set(generate_scenario("new_product", 2000, seed=1)["label"]) == set(INTENTS)


# ------------------------------------------------------------------------------------------------------- errors


def test_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(UnknownScenarioError) as info:
        generate_scenario("holiday_rush", 10)
    assert isinstance(info.value, ValueError)
    assert all(name in str(info.value) for name in SCENARIOS)


@pytest.mark.parametrize("severity", [-0.1, 1.01, float("nan"), float("inf")])
def test_severity_outside_unit_interval_is_rejected(severity: float) -> None:
    with pytest.raises(ValueError, match="severity"):
        generate_scenario("prior_shift", 10, severity=severity)


@pytest.mark.parametrize("n", [0, -5])
def test_non_positive_row_count_is_rejected(n: int) -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_corpus(n)
    with pytest.raises(ValueError, match="n must be"):
        generate_scenario("length_shift", n)


def test_bad_label_noise_and_seed_are_rejected() -> None:
    with pytest.raises(ValueError, match="label_noise"):
        generate_corpus(10, label_noise=1.5)
    with pytest.raises(ValueError, match="seed"):
        generate_corpus(10, seed=-1)
