"""Curation: normalisation, redaction, deduplication, feedback priority and stable splits."""

from __future__ import annotations

import pandas as pd

from modelops.core.data.curate import (
    SplitFractions, assign_split, content_hash, curate, example_id, leakage, normalise_text, pii_residue, redact_pii,
)


def _raw(rows: list[tuple[str, str]], source: str = "raw") -> pd.DataFrame:
    return pd.DataFrame([{"text": t, "label": l, "source": source} for t, l in rows])


def test_normalise_unicode_and_whitespace():
    assert normalise_text("  Ｈｅｌｌｏ\u00a0\tworld\x00 \n") == "Hello world"


def test_redaction_replaces_each_pii_type_with_typed_placeholder():
    text = ("Mail me at jane.doe+x@example.co.uk or call +44 20 7946 0958; card 4111 1111 1111 1111, "
            "IBAN DE89 3704 0044 0532 0130 00. Order #A12345 from 2024-03-01 cost 49.99")
    clean, counts = redact_pii(text)
    assert counts == {"EMAIL": 1, "IBAN": 1, "CARD": 1, "PHONE": 1}
    assert "<EMAIL>" in clean and "<PHONE>" in clean and "<CARD>" in clean and "<IBAN>" in clean
    assert "#A12345" in clean and "2024-03-01" in clean and "49.99" in clean
    assert sum(pii_residue(pd.Series([clean])).values()) == 0


def test_dedupe_exact_and_normalised_and_conflicts():
    raw = _raw([("Refund please", "refund"), ("Refund please", "refund"), ("refund   PLEASE", "refund"),
                ("where is my parcel", "shipping"), ("Where is my parcel", "complaint"),
                ("where is my parcel ", "shipping")])
    curated, report = curate(raw)
    assert report.input_rows == 6
    assert report.exact_duplicates == 1
    assert len(curated) == 2
    assert report.label_conflicts == 1
    assert dict(zip(curated["text"].str.lower(), curated["label"])) == {"refund please": "refund",
                                                                      "where is my parcel": "shipping"}


def test_feedback_label_wins_over_raw():
    curated, report = curate(_raw([("my card was stolen", "billing")]),
                             _raw([("my card was stolen", "fraud_report")], source="feedback:b1"))
    assert curated["label"].tolist() == ["fraud_report"]
    assert report.feedback_rows == 1


def test_split_is_stable_when_data_is_added():
    texts = [f"ticket number {i} about billing" for i in range(400)]
    small, _ = curate(_raw([(t, "billing") for t in texts[:200]]))
    large, _ = curate(_raw([(t, "billing") for t in texts]))
    merged = small.merge(large, on="id", suffixes=("_small", "_large"))
    assert len(merged) == 200
    assert (merged["split_small"] == merged["split_large"]).all()
    shares = large["split"].value_counts(normalize=True)
    assert 0.7 < shares["train"] < 0.85 and 0.08 < shares["test"] < 0.22


def test_no_leakage_and_hash_is_canonical():
    raw = _raw([(f"text {i}", "billing" if i % 2 else "refund") for i in range(100)])
    curated, _ = curate(raw)
    assert leakage(curated).empty
    shuffled, _ = curate(raw.sample(frac=1.0, random_state=1))
    assert content_hash(curated) == content_hash(shuffled)
    changed = curated.copy()
    changed.loc[0, "label"] = "other"
    assert content_hash(changed) != content_hash(curated)


def test_leakage_detects_an_id_in_two_splits():
    curated, _ = curate(_raw([("a", "x"), ("b", "y")]))
    leaked = pd.concat([curated, curated.assign(split="test" if curated["split"].iloc[0] != "test" else "train")])
    assert not leakage(leaked).empty


def test_assign_split_depends_only_on_id():
    ids = pd.Series([example_id(f"t{i}") for i in range(50)])
    assert assign_split(ids, SplitFractions()).tolist() == assign_split(ids[::-1], SplitFractions())[::-1].tolist()
