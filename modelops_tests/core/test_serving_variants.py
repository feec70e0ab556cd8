"""Serving variants: the ONNX export round trip, the serving policy refusing a broken int8 graph, and the server's
loader falling back (with a log line) when a variant file is altered or missing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from modelops.core.data.datagen import generate_corpus
from modelops.core.evaluation.evaluate import evaluate
from modelops.core.evaluation.evaluation_policy import CostModel, GateRules, ServingPolicy
from modelops.core.evaluation.serving_variants import VARIANT_ARTIFACT_DIR, choose_serving_variant
from modelops.core.registry.registry import ModelRegistry
from modelops.core.serving import onnx_variants
from modelops.core.serving.onnx_variants import ONNX_FP32, ONNX_INT8, PYTORCH, OnnxClassifier, export_variants
from modelops.core.serving.predictor import AdapterClassifier
from modelops.core.serving.served_model import load_served_classifier
from modelops_tests.helpers import LABELS

COST = CostModel(default_error_cost=1.0, correct_cost=0.0)
LENIENT = GateRules(max_class_f1_drop=1.0)  # the untrained head's near-ties may flip under int8: not under test here


@pytest.fixture(scope="module")
def classifier(base_info, untrained_adapter_dir) -> AdapterClassifier:
    return AdapterClassifier(base_info, untrained_adapter_dir)


@pytest.fixture(scope="module")
def variants(classifier, tmp_path_factory) -> dict[str, Path]:
    return export_variants(classifier, tmp_path_factory.mktemp("variants"))


@pytest.fixture(scope="module")
def test_rows() -> tuple[list[str], list[str]]:
    corpus = generate_corpus(400, seed=5)
    rows = corpus[corpus["label"].isin(LABELS)].head(60)
    return rows["text"].tolist(), rows["label"].tolist()


def test_onnx_round_trip_matches_pytorch(classifier, variants, test_rows):
    texts = test_rows[0][:40] + ["", "x" * 2000]  # an empty text and one cut at max_length
    torch_out = classifier.predict(texts)
    fp32 = OnnxClassifier.of(classifier, variants[ONNX_FP32]).predict(texts)
    assert fp32.labels == torch_out.labels
    np.testing.assert_allclose(fp32.probabilities, torch_out.probabilities, atol=1e-5)
    np.testing.assert_allclose(fp32.embeddings, torch_out.embeddings, atol=1e-3)
    int8 = OnnxClassifier.of(classifier, variants[ONNX_INT8]).predict(texts)
    assert np.abs(int8.probabilities - torch_out.probabilities).max() < 0.02
    assert variants[ONNX_INT8].stat().st_size < 0.35 * variants[ONNX_FP32].stat().st_size


def test_int8_quantisation_logs_no_per_node_chatter(variants, tmp_path, caplog):
    with caplog.at_level(logging.DEBUG):
        onnx_variants.quantise_int8(variants[ONNX_FP32], tmp_path / "int8.onnx")
    assert (tmp_path / "int8.onnx").stat().st_size < 0.35 * variants[ONNX_FP32].stat().st_size
    assert not [r.getMessage() for r in caplog.records if "onnxruntime" in r.pathname], "quantiser lines leaked"


def test_a_graph_for_other_labels_is_refused(base_info, untrained_adapter_dir, variants, classifier):
    with pytest.raises(onnx_variants.VariantError, match="not this classifier's graph"):
        OnnxClassifier(classifier.tokenizer, [*LABELS, "extra"], 1.0, variants[ONNX_FP32])


def _broken_quantisation(fp32: Path, path: Path) -> Path:
    """The real int8 quantisation, then the head's weight scales zeroed: every text gets the same logits."""
    import onnx
    from onnx import numpy_helper

    real_quantise(fp32, path)
    graph = onnx.load(str(path))
    for init in graph.graph.initializer:
        if init.name.startswith("model.classifier.weight") and init.name.endswith("_scale"):
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    onnx.save(graph, str(path))
    return path


real_quantise = onnx_variants.quantise_int8


def _reference(classifier, test_rows):
    return evaluate(test_rows[1], classifier.predict(test_rows[0]).probabilities, classifier.label_names, COST)


def test_policy_refuses_a_broken_int8_and_fp32_serves(classifier, test_rows, tmp_path, monkeypatch, fresh_mlflow_db,
                                                      untrained_adapter_dir, base_info):
    monkeypatch.setattr(onnx_variants, "quantise_int8", _broken_quantisation)
    choice = choose_serving_variant(classifier, *test_rows, _reference(classifier, test_rows), COST, ServingPolicy(),
                                    LENIENT, tmp_path / "variants")
    assert choice.variant == ONNX_FP32
    int8 = next(result for result in choice.results if result.variant == ONNX_INT8)
    assert not int8.passed and not int8.checks[0].passed and "macro-F1 drop" in int8.checks[0].detail
    assert "refused: onnx-int8" in choice.reason and "| onnx-int8 |" in choice.markdown(_reference(classifier,
                                                                                                      test_rows))
    registry, version = _registered(choice, untrained_adapter_dir, tmp_path, fresh_mlflow_db)
    assert ONNX_FP32 in _files_tag(registry, version) and ONNX_INT8 not in _files_tag(registry, version)
    served = load_served_classifier(registry, version, base_info, tmp_path / "cache")
    assert served.variant == ONNX_FP32 and isinstance(served.classifier, OnnxClassifier)
    assert served.classifier.predict(test_rows[0]).labels == classifier.predict(test_rows[0]).labels


def test_an_empty_variant_list_serves_pytorch(classifier, test_rows, tmp_path):
    choice = choose_serving_variant(classifier, *test_rows, _reference(classifier, test_rows), COST,
                                    ServingPolicy(variants=[]), LENIENT, tmp_path)
    assert (choice.variant, choice.results, choice.files) == (PYTORCH, [], {})


def test_altered_or_missing_variant_files_fall_back_with_a_log_line(classifier, test_rows, tmp_path, fresh_mlflow_db,
                                                                     untrained_adapter_dir, base_info, caplog):
    policy = ServingPolicy(max_macro_f1_drop=1.0)
    choice = choose_serving_variant(classifier, *test_rows, _reference(classifier, test_rows), COST, policy, LENIENT,
                                    tmp_path / "variants")
    assert choice.variant == ONNX_INT8 and [r.variant for r in choice.results if r.passed] == [ONNX_INT8, ONNX_FP32]
    registry, version = _registered(choice, untrained_adapter_dir, tmp_path, fresh_mlflow_db)
    assert load_served_classifier(registry, version, base_info, tmp_path / "c1").variant == ONNX_INT8

    stored = tmp_path / "artifacts"
    int8_file = next(stored.rglob(f"{VARIANT_ARTIFACT_DIR}/model.int8.onnx"))
    int8_file.write_bytes(int8_file.read_bytes()[:1000])  # truncated on disk
    with caplog.at_level(logging.ERROR, logger="modelops.core.serving.served_model"):
        served = load_served_classifier(registry, version, base_info, tmp_path / "c2")
    assert served.variant == ONNX_FP32 and served.reason.startswith("fallback from onnx-int8: onnx-int8")
    assert "sha256 differs" in served.reason
    assert any("serving variant onnx-int8 cannot be loaded" in r.getMessage() for r in caplog.records)

    next(stored.rglob(f"{VARIANT_ARTIFACT_DIR}/model.onnx")).unlink()
    served = load_served_classifier(registry, version, base_info, tmp_path / "c3")
    assert served.variant == PYTORCH and isinstance(served.classifier, AdapterClassifier)
    assert "onnx-int8" in served.reason and "onnx-fp32" in served.reason
    assert served.classifier.predict(test_rows[0][:5]).labels == classifier.predict(test_rows[0][:5]).labels


def _registered(choice, adapter_dir: Path, tmp_path: Path, fresh_mlflow_db) -> tuple[ModelRegistry, str]:
    """A registered version with the choice's variant files logged and its tags set, as the evaluation does."""
    registry = ModelRegistry(fresh_mlflow_db(tmp_path / "mlflow.db"), "support-router", tmp_path / "artifacts")
    with registry.run("train", {}) as run_id:
        version = registry.register_adapter(run_id, adapter_dir, {})
    with registry.run("evaluate", {}) as run_id:
        choice.record(registry, version, run_id)
    return registry, version


def _files_tag(registry: ModelRegistry, version: str) -> str:
    return registry.version_info(version)["tags"].get("modelops.serving_variant_files", "")


def test_the_serving_policy_is_read_from_evaluation_yaml_and_checked(tmp_path):
    import yaml

    from modelops.core.config_files import ConfigError, load_config
    from modelops.core.evaluation.evaluation_policy import EvaluationPolicy
    from modelops.settings import PACKAGE_CONFIG_DIR

    shipped = yaml.safe_load((PACKAGE_CONFIG_DIR / "evaluation.yaml").read_text())
    assert load_config(PACKAGE_CONFIG_DIR / "evaluation.yaml", EvaluationPolicy).serving == ServingPolicy()
    for serving, field in (({"variants": ["onnx-int4"]}, "serving.variants"),
                           ({"max_macro_f1_drop": 2}, "serving.max_macro_f1_drop"),
                           ({"max_f1_drop": 0.01}, "serving")):
        path = tmp_path / "evaluation.yaml"
        path.write_text(yaml.safe_dump({**shipped, "serving": serving}))
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            load_config(path, EvaluationPolicy)
    del shipped["serving"]
    path.write_text(yaml.safe_dump(shipped))
    assert load_config(path, EvaluationPolicy).serving == ServingPolicy()  # optional: the defaults
