"""Bringing your own data: `modelops init` on a real CSV with other column names and many labels, then a bootstrap
to a champion under the customisation's own name; refusing to overwrite; the policy/data mismatch in metadata;
`modelops drift-check` exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from modelops.core.data.onboarding import OnboardingError, gate_defaults, summarise_data

CLINC150 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "clinc150"


def _modelops(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MODELOPS_")}
    env["DAGSTER_HOME"] = str(cwd / ".modelops" / "dagster")
    return subprocess.run([sys.executable, "-m", "modelops.app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=900, cwd=cwd)


def _own_csv(path: Path, intents: int, per_intent: int) -> Path:
    """Real banking queries (CLINC150) under the owner's column names, plus two rows that must be quarantined."""
    source = CLINC150 / "train.csv"
    if not source.is_file():
        pytest.fail(f"{source} is missing: onboarding tests read CLINC150 from ../shared/datasets/clinc150")
    frame = pd.read_csv(source)
    chosen = sorted(frame.loc[frame["domain"] == "banking", "label"].unique())[:intents]
    frame = frame[frame["label"].isin(chosen)].groupby("label").head(per_intent)
    frame = frame.rename(columns={"text": "query", "label": "intent"})[["query", "intent"]]
    bad = pd.DataFrame({"query": ["", "what is my balance"], "intent": ["balance", None]})
    pd.concat([frame, bad], ignore_index=True).to_csv(path, index=False)
    return path


def test_summary_and_gate_defaults_follow_the_data(tmp_path: Path) -> None:
    summary = summarise_data(_own_csv(tmp_path / "own.csv", intents=12, per_intent=40), "query", "intent", 2000)
    assert (summary.received, summary.valid, len(summary.label_counts)) == (482, 480, 12)
    assert sum(summary.quarantined.values()) == 2
    gate = gate_defaults(summary)
    assert gate["min_eval_size"] == 50 and gate["macro_f1_tolerance"] == pytest.approx(0.5 / 72 ** 0.5, abs=1e-3)
    assert gate["max_class_f1_drop"] == pytest.approx(2 / 6, abs=1e-3)  # 6 test examples for the median label
    with pytest.raises(OnboardingError, match="no valid example.*--text-column"):
        summarise_data(tmp_path / "own.csv", "text", "intent", 2000)


def test_init_then_bootstrap_a_champion_under_its_own_name(tmp_path: Path) -> None:
    data = _own_csv(tmp_path / "bank_queries.csv", intents=10, per_intent=60)
    out = _modelops(tmp_path, "init", "bank_router", "--data", str(data), "--text-column", "query",
                    "--label-column", "intent")
    assert out.returncode == 0, out.stderr
    assert "602 rows, 600 valid, 2 quarantined, 10 labels" in out.stdout
    assert "quarantined (missing_label): 1" in out.stdout and "modelops materialize bootstrap_job" in out.stdout
    config = yaml.safe_load((tmp_path / "modelops.yaml").read_text())
    entry = config["customisations"]["bank_router"]
    assert entry["registered_model_name"] == "bank-router" and (entry["text_column"], entry["label_column"]) == (
        "query", "intent")
    policy = yaml.safe_load((tmp_path / entry["evaluation_config"]).read_text())
    assert len(policy["cost_model"]["missed_class_costs"]) == 10
    assert (tmp_path / entry["data_dir"] / "raw" / "bank_queries.csv").read_bytes() == data.read_bytes()
    for key in ("drift_config", "retrain_config", "training_config"):
        assert (tmp_path / entry[key]).is_file()

    before = {p: p.read_bytes() for p in (tmp_path / "policies").rglob("*.yaml")}
    refused = _modelops(tmp_path, "init", "bank_router", "--data", str(data), "--text-column", "query",
                        "--label-column", "intent")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert {p: p.read_bytes() for p in before} == before

    training = tmp_path / entry["training_config"]  # the owner may edit every policy; 2 epochs keep the suite short
    training.write_text(training.read_text().replace("epochs: 4 ", "epochs: 2 "))
    boot = _modelops(tmp_path, "materialize", "bootstrap_job")
    assert boot.returncode == 0, boot.stdout + boot.stderr
    assert "bank_router_bootstrap_job: succeeded" in boot.stdout
    from modelops.core.registry.registry import ModelRegistry

    registry = ModelRegistry(f"sqlite:///{tmp_path / '.modelops' / 'mlflow.db'}", "bank-router",
                             tmp_path / ".modelops" / "mlartifacts")
    assert registry.alias_version("champion") == "1"

    check = _modelops(tmp_path, "drift-check")
    assert check.returncode == 2 and "not enough captured traffic" in check.stderr

    # Traffic as the server captures it: first unseen queries of the same intents from the same collection (CLINC150's
    # train.csv rows the owner's file left out), then out-of-scope queries.
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.serving.served_model import load_champion
    from modelops.settings import default_base_model_path
    from modelops_tests.helpers import write_captured_batch

    classifier = load_champion(registry, describe_base_model(default_base_model_path()), tmp_path / "cache").classifier
    production = tmp_path / entry["data_dir"] / "production"
    source = pd.read_csv(CLINC150 / "train.csv")
    owned = set(pd.read_csv(data)["query"])
    unseen = source[source["label"].isin(set(pd.read_csv(data)["intent"].dropna())) & ~source["text"].isin(owned)]
    write_captured_batch(production, classifier, unseen["text"].tolist(), "bank-router")
    quiet = _modelops(tmp_path, "drift-check", "--rows", "200")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert f"bank_router: no drift on {len(unseen)} rows from 1 batch(es), champion v1" in quiet.stdout
    assert "| predicted_label |" in quiet.stdout and "label-free accuracy estimate" in quiet.stdout
    out_of_scope = pd.read_csv(CLINC150 / "out_of_scope.csv")
    write_captured_batch(production, classifier, out_of_scope[out_of_scope["split"] == "test"]["text"].head(200)
                         .tolist(), "bank-router")
    drifted = _modelops(tmp_path, "drift-check", "--customisation", "bank_router")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "bank_router: DRIFT" in drifted.stdout


def test_init_a_causal_lm_customisation_from_a_prompt_response_file(tmp_path: Path, monkeypatch) -> None:
    import math

    from modelops.app.init_customisation import init_customisation
    from modelops.core.config_files import load_config
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks
    from modelops.core.evaluation.evaluation_policy import EvaluationPolicy
    from modelops.core.training.training_config import TrainingConfig
    from modelops.settings import Settings, load_settings
    from modelops_tests.helpers import build_tiny_causal_lm

    tasks = extraction_tasks(generate_corpus(300, seed=0))
    data = tmp_path / "extraction.jsonl"
    pd.concat([tasks, pd.DataFrame({"prompt": ["an orphan prompt"], "response": [""]})]).to_json(
        data, orient="records", lines=True)
    base = build_tiny_causal_lm(tmp_path / "llm", (tasks["prompt"] + tasks["response"]).tolist())
    with pytest.raises(OnboardingError, match="--task causal-lm needs --base"):
        init_customisation("extractor", data, "text", "label", Settings(), tmp_path, task="causal-lm")
    out = _modelops(tmp_path, "init", "extractor", "--data", str(data), "--task", "causal-lm", "--base", str(base))
    assert out.returncode == 0, out.stderr
    intents = tasks["response"].map(lambda r: yaml.safe_load(r)["intent"]).nunique()
    assert (f"301 rows, 300 valid, 1 quarantined, json responses, decision field 'intent' ({intents} values)"
            in out.stdout)
    assert "quarantined (missing_response): 1" in out.stdout and "POST /generate/extractor" in out.stdout
    monkeypatch.chdir(tmp_path)  # the entry's paths are relative to modelops.yaml's folder
    settings = load_settings(tmp_path / "modelops.yaml").customisation_named("extractor")
    assert settings.task == "causal-lm" and settings.base_model_path == base.resolve()
    generation = load_config(settings.evaluation_config, EvaluationPolicy).generation
    assert (generation.output, generation.decision_field, generation.field_costs) == ("json", "intent",
                                                                                      {"order_number": 1.0})
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in tasks["response"]) + 1
    assert generation.max_new_tokens == math.ceil(longest * 1.25)
    assert load_config(settings.training_config, TrainingConfig).lora.target_modules[0] == "q_proj"


def test_a_decision_field_is_found_in_real_intents_and_a_constant_field_is_not_one(tmp_path: Path) -> None:
    import json

    from modelops.core.data.onboarding import summarise_instructions

    source = CLINC150 / "train.csv"
    if not source.is_file():
        pytest.fail(f"{source} is missing: onboarding tests read CLINC150 from ../shared/datasets/clinc150")
    queries = pd.read_csv(source).sample(1500, random_state=0)  # 150 intents, 10 per intent on average
    data = tmp_path / "clinc.jsonl"
    pd.DataFrame({"prompt": "Route this query as JSON.\nQuery: " + queries["text"],
                  "response": [json.dumps({"intent": label, "source": "app"}) for label in queries["label"]]}
                 ).to_json(data, orient="records", lines=True)
    summary = summarise_instructions(data, 2000)
    assert summary.decision_field == "intent" and len(summary.decision_counts) == queries["label"].nunique() == 150
    assert summary.fields == ["intent", "source"]
