"""raw_examples and curated_training_set materialised with Dagster on a temporary instance."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from modelops.defs.customisation import CustomisationDefs


def _materialize(c: CustomisationDefs, resources, instance, run_config=None, raise_on_error=True):
    return dg.materialize([c.raw_examples, c.curated_training_set, *c.data_checks], resources=resources,
                          instance=instance, run_config=run_config or {}, raise_on_error=raise_on_error)


def _meta(c: CustomisationDefs, result, asset: str) -> dict:
    event = result.asset_materializations_for_node(f"{c.keys.name}__{asset}")[0]
    return {k: v.value for k, v in event.metadata.items()}


def test_generator_data_flows_through_curation_with_checks(customisation, resources, instance, settings):
    config = customisation.keys.run_config(raw_examples={"generator_rows": 1000, "generator_seed": 3})
    result = _materialize(customisation, resources, instance, config)
    assert result.success
    raw = _meta(customisation, result, "raw_examples")
    assert raw["received_rows"] == 1000 and raw["valid_rows"] + raw["quarantined_rows"] == 1000
    curated = _meta(customisation, result, "curated_training_set")
    assert len(curated["content_hash"]) == 64
    assert curated["pii_redactions_total"] > 0
    assert curated["dagster/row_count"] <= 1000
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"curated_no_leakage": True, "curated_min_examples_per_label": True,
                      "curated_no_pii_residue": True, "curated_schema": True}
    frame = pd.read_parquet(settings.state / "curated" / f"{curated['content_hash']}.parquet")
    assert set(frame["split"]) == {"train", "validation", "test"}
    assert not frame["text"].str.contains("@").any()


def test_user_csv_with_bad_rows_is_ingested_and_bad_rows_quarantined(customisation, resources, instance, settings):
    from modelops.core.data.datagen import generate_corpus

    good = generate_corpus(1000, seed=5)
    bad = pd.DataFrame({"text": ["   ", None, "x" * 5000, "no label here"], "label": ["billing", "refund", "refund", None]})
    settings.raw_dir.mkdir(parents=True)
    pd.concat([good, bad]).to_csv(settings.raw_dir / "tickets.csv", index=False)
    (settings.raw_dir / "garbage.parquet").write_bytes(b"\x00\x01 definitely not parquet")
    result = _materialize(customisation, resources, instance)
    assert result.success
    raw = _meta(customisation, result, "raw_examples")
    assert raw["valid_rows"] == 1000
    assert raw["quarantined_rows"] == 5  # 4 bad rows + 1 unreadable file
    quarantined = pd.concat(pd.read_parquet(p) for p in settings.quarantine_dir.glob("*.parquet"))
    assert sorted(quarantined["reason"]) == sorted(["empty_text", "missing_text", "text_too_long", "missing_label",
                                                     "unreadable_file"])


def test_custom_column_names_via_run_config(customisation, resources, instance, settings):
    from modelops.core.data.datagen import generate_corpus

    settings.raw_dir.mkdir(parents=True)
    generate_corpus(1000, seed=2).rename(columns={"text": "body", "label": "intent"}).to_json(
        settings.raw_dir / "tickets.jsonl", orient="records", lines=True)
    config = customisation.keys.run_config(raw_examples={"text_column": "body", "label_column": "intent"})
    assert _materialize(customisation, resources, instance, config).success


def test_zero_valid_rows_fails_with_clear_message_and_keeps_rows(customisation, resources, instance, settings):
    settings.raw_dir.mkdir(parents=True)
    pd.DataFrame({"body": ["a", "b"], "label": ["x", "y"]}).to_csv(settings.raw_dir / "wrong.csv", index=False)
    result = dg.materialize([customisation.raw_examples], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "No valid examples among 2 received rows" in failure.event_specific_data.error.message
    quarantined = pd.concat(pd.read_parquet(p) for p in settings.quarantine_dir.glob("*.parquet"))
    assert len(quarantined) == 2


def test_source_files_without_files_fails(customisation, resources, instance):
    with pytest.raises(dg.Failure, match="holds no .csv"):
        dg.materialize([customisation.raw_examples], resources=resources, instance=instance,
                       run_config=customisation.keys.run_config(raw_examples={"source": "files"}))


def test_a_new_label_below_the_minimum_waits_as_pending_without_blocking(customisation, resources, instance,
                                                                        settings):
    """A new intent with a handful of examples is held back (kept, counted, shown), the rest curates and passes the
    blocking checks; once it has enough examples it joins the curated set."""
    from modelops.core.data.datagen import generate_corpus

    settings.raw_dir.mkdir(parents=True)
    generate_corpus(1000, seed=5).to_csv(settings.raw_dir / "tickets.csv", index=False)
    texts = [f"my esim profile {i} will not activate abroad, roaming stays off on plan {i * 7}" for i in range(80)]
    pd.DataFrame({"text": texts[:8], "label": "esim_activation"}).to_csv(settings.raw_dir / "new.csv", index=False)
    result = _materialize(customisation, resources, instance)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks.values())  # the blocking check guards what is trained on, which is ready
    curated = _meta(customisation, result, "curated_training_set")
    assert curated["pending_rows"] == 8 and "| esim_activation |" in curated["pending_labels"]
    frame = pd.read_parquet(settings.state / "curated" / f"{curated['content_hash']}.parquet")
    assert "esim_activation" not in set(frame["label"]) and frame["label"].nunique() == 10
    kept = pd.read_parquet(settings.state / "curated" / "pending" / f"{curated['content_hash']}.parquet")
    assert len(kept) == 8 and set(kept["label"]) == {"esim_activation"}
    record = customisation_record(settings)["pending_labels"]["esim_activation"]
    assert record["needs_train"] == 10 - record["train"] and record["needs_test"] == max(0, 3 - record["test"])

    pd.DataFrame({"text": texts, "label": "esim_activation"}).to_csv(settings.raw_dir / "new.csv", index=False)
    grown = _meta(customisation, _materialize(customisation, resources, instance), "curated_training_set")
    assert grown["pending_rows"] == 0 and "No label is waiting" in grown["pending_labels"]
    frame = pd.read_parquet(settings.state / "curated" / f"{grown['content_hash']}.parquet")
    assert (frame["label"] == "esim_activation").sum() == 80


def customisation_record(settings) -> dict:
    """The curated_training_set record the asset wrote."""
    import json

    return json.loads((settings.state / "records" / "curated_training_set.json").read_text())
