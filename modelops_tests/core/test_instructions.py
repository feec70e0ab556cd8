"""Instruction examples (prompt -> response): validation with quarantine reasons, curation (PII in both columns,
prompt-level deduplication, stable splits, hash) and the built-in ticket -> JSON task."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from modelops.core.data.curate import SplitFractions, leakage, pii_residue
from modelops.core.data.datagen import generate_corpus
from modelops.core.data.instructions import (
    ORDER_NUMBER,
    clean_prompt,
    curate_instructions,
    extraction_tasks,
    instructions_hash,
    normalise_multiline,
    read_instructions,
    validate_instructions,
)


def _raw(rows: list[tuple[str, str]], source: str = "raw.csv") -> pd.DataFrame:
    return pd.DataFrame([{"prompt": p, "response": r, "source": source} for p, r in rows])


def test_each_bad_row_is_quarantined_with_its_reason_and_nothing_is_lost():
    records = [{"prompt": "Summarise: the parcel is late", "response": "Late parcel."},
               {"prompt": "Summarise: refund", "response": "   "},
               {"prompt": "Summarise: refund"},
               {"prompt": "", "response": "x"},
               {"prompt": "p" * 51, "response": "x"},
               {"prompt": "ok", "response": "r" * 51},
               {"prompt": 7, "response": "x"}]
    result = validate_instructions(records, "raw.jsonl", max_chars=50)
    assert result.valid.to_dict("records") == [{"prompt": "Summarise: the parcel is late",
                                                "response": "Late parcel.", "source": "raw.jsonl"}]
    assert result.rejected["reason"].tolist() == ["missing_response", "missing_response", "empty_text",
                                                  "text_too_long", "response_too_long", "non_string_text"]
    assert result.rejected["row"].tolist() == [1, 2, 3, 4, 5, 6]
    assert json.loads(result.rejected["raw"].iloc[-1]) == {"prompt": 7, "response": "x"}
    assert result.received == len(records)


def test_a_file_without_a_response_column_is_quarantined_row_by_row(tmp_path: Path):
    path = tmp_path / "qa.csv"
    pd.DataFrame({"prompt": ["a", "b"], "answer": ["x", "y"]}).to_csv(path, index=False)
    result = read_instructions(path)
    assert result.valid.empty and list(result.valid.columns) == ["prompt", "response", "source"]
    assert result.rejected["reason"].tolist() == ["missing_column", "missing_column"]
    (tmp_path / "empty.jsonl").write_text("")
    assert read_instructions(tmp_path / "empty.jsonl").rejected["reason"].tolist() == ["empty_file"]


def test_responses_keep_their_layout():
    assert normalise_multiline("def f():\r\n    return 1   \n\n\x07done  ") == "def f():\n    return 1\n\ndone"


def test_curation_redacts_both_columns_dedupes_by_prompt_and_splits_stably():
    raw = _raw([("Reply to jane@example.com about order #A12345", "Dear jane@example.com, it ships today."),
                ("Reply to jane@example.com about order #A12345", "Dear jane@example.com, it ships today."),
                ("reply to  JANE@example.com about order #A12345", "Another answer"),
                ("Translate: Guten Morgen", "Good morning")])
    curated, report = curate_instructions(raw)
    assert list(curated.columns) == ["id", "prompt", "response", "split", "source"]
    assert len(curated) == 2 and report.exact_duplicates == 1 and report.label_conflicts == 1
    assert report.pii_redactions == {"EMAIL": 3}
    assert sum(pii_residue(curated["prompt"]).values()) + sum(pii_residue(curated["response"]).values()) == 0
    reply = curated[curated["prompt"].str.startswith("Reply")].iloc[0]
    assert reply["response"] == "Another answer"  # exact duplicates count once: a tie, the alphabetically first wins
    assert "#A12345" in reply["prompt"]
    assert leakage(curated, "prompt").empty

    grown, _ = curate_instructions(pd.concat([raw, _raw([(f"Translate: word {i}", f"w{i}") for i in range(40)])]))
    assert grown.set_index("id").loc[curated["id"], "split"].tolist() == curated["split"].tolist()


def test_the_served_model_gets_each_prompt_as_curation_gave_it_to_training():
    prompt = "Extract the intent as JSON.\nTicket: refund for #A12345, mail me at jane@example.com  \nJSON:"
    curated, _ = curate_instructions(_raw([(prompt, '{"intent": "refund"}')]))
    assert clean_prompt(prompt) == curated["prompt"].iloc[0] == clean_prompt(clean_prompt(prompt))
    assert clean_prompt(prompt) == "Extract the intent as JSON.\nTicket: refund for #A12345, mail me at <EMAIL>\nJSON:"


def test_the_hash_follows_content_not_row_order():
    curated, _ = curate_instructions(_raw([(f"question {i}", f"answer {i}") for i in range(20)]),
                                     SplitFractions(0.2, 0.2))
    assert instructions_hash(curated) == instructions_hash(curated.sample(frac=1, random_state=0))
    changed = curated.copy()
    changed.loc[0, "response"] = "another answer"
    assert instructions_hash(changed) != instructions_hash(curated)


def test_the_extraction_task_answers_each_ticket_with_its_intent_and_order_number():
    tickets = generate_corpus(300, seed=3)
    tasks = extraction_tasks(tickets)
    answers = [json.loads(r) for r in tasks["response"]]
    assert [a["intent"] for a in answers] == tickets["label"].tolist()
    with_order = [(a["order_number"], t) for a, t in zip(answers, tickets["text"]) if a["order_number"]]
    assert 30 < len(with_order) < 270  # both kinds occur
    assert all(number in text and ORDER_NUMBER.fullmatch(number) for number, text in with_order)
    assert all(ORDER_NUMBER.search(t) is None for a, t in zip(answers, tickets["text"]) if not a["order_number"])
    assert all(p.endswith("\nJSON:") and text in p for p, text in zip(tasks["prompt"], tickets["text"]))
