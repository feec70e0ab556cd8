"""One challenger evaluation end to end on real (untrained) adapters and a real MLflow store: a challenger that
adds a class is compared with the champion on the champion's rows, and a passed one gets its serving variant."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelops.core.data.datagen import generate_corpus
from modelops.core.evaluation.challenger_evaluation import evaluate_challenger
from modelops.core.registry.registry import ModelRegistry
from modelops.core.serving.predictor import AdapterClassifier
from modelops.core.tags import VersionTag
from modelops.settings import PACKAGE_CONFIG_DIR
from modelops_tests.helpers import LABELS, save_random_adapter

NEW = "cancellation"
LENIENT_GATE = {"min_eval_size": 1, "min_macro_f1": 0.0, "min_accuracy": 0.0, "min_class_f1": 0.0,
                "macro_f1_tolerance": 1.0, "max_cost_increase": 1e6, "max_class_f1_drop": 1.0}


def test_a_challenger_with_a_new_class_is_compared_on_the_champion_rows(base_info, untrained_adapter_dir: Path,
                                                                        tmp_path: Path, fresh_mlflow_db):
    registry = ModelRegistry(fresh_mlflow_db(tmp_path / "mlflow.db"), "support-router", tmp_path / "artifacts")
    challenger_dir = save_random_adapter(base_info, tmp_path / "challenger", [*LABELS, NEW], seed=1)
    versions = []
    for adapter in (untrained_adapter_dir, challenger_dir):
        with registry.run("train", {}) as run_id:
            versions.append(registry.register_adapter(run_id, adapter, {}))
    registry.promote(versions[0], "first champion")
    corpus = generate_corpus(600, seed=4)
    rows = corpus[corpus["label"].isin([*LABELS, NEW])].head(120).reset_index(drop=True)
    curated = rows.assign(split=["test" if i % 2 else "validation" for i in range(len(rows))], source="generator")
    policy = yaml.safe_load((PACKAGE_CONFIG_DIR / "evaluation.yaml").read_text())
    (tmp_path / "evaluation.yaml").write_text(yaml.safe_dump({**policy, "gate": LENIENT_GATE}))

    def load(version: str) -> AdapterClassifier:
        return AdapterClassifier(base_info, registry.download_adapter(version, tmp_path / f"v{version}"))

    found = evaluate_challenger(registry, versions[1], curated, tmp_path / "evaluation.yaml", load, tmp_path / "out",
                                {})
    test = curated[curated["split"] == "test"]
    assert found.challenger.n == len(test) and found.champion is not None
    assert found.champion.n == int(test["label"].isin(LABELS).sum()) < len(test)
    assert any(f"does not know the new labels ['{NEW}']" in warning for warning in found.warnings)
    label_set = next(check for check in found.decision.checks if check.name == "label_set")
    assert label_set.passed and f"adds new labels ['{NEW}']" in label_set.detail
    assert next(check for check in found.decision.checks if check.name == "eval_set").passed
    assert found.decision.passed and found.serving is not None
    tags = registry.version_info(versions[1])["tags"]
    assert tags[VersionTag.SERVING_VARIANT] == found.serving.variant == found.record()["serving_variant"]
