"""A causal-lm customisation through the whole loop: generated tickets -> prompt/response instructions -> curated set
and its checks -> LoRA adapter on a tiny causal LM (built here from a config) in the Pipes training process ->
responses generated and scored under the generation policy -> gate -> champion with a calibrated drift reference;
a second model against the first; an incremental run; then the champion served at POST /generate, its captured
responses checked for drift by the sensor, answers fed back, and the retrain the sensor requests. Real MLflow, real
Dagster, real Evidently, real generations."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from modelops.core.config_files import ConfigError
from modelops.core.data.instructions import instructions_hash
from modelops.core.registry.registry import ModelRegistry
from modelops.defs.customisation import CustomisationDefs, customisation_defs
from modelops.defs.resources import resources_from_settings
from modelops.settings import PACKAGE_CONFIG_DIR, Settings, load_settings
from modelops_tests.helpers import build_tiny_causal_lm

TICKETS = 400


def _policies(root: Path) -> dict[str, Path]:
    """The shipped causal-lm policies, sized for a tiny random model: a learning rate a 64-wide model needs, and
    floors it can pass (it learns the JSON format, not yet the intents)."""
    training = yaml.safe_load((PACKAGE_CONFIG_DIR / "training-causal-lm.yaml").read_text())
    training.update(epochs=6, batch_size=16, learning_rate=0.02, max_length=128, early_stopping_patience=3)
    evaluation = yaml.safe_load((PACKAGE_CONFIG_DIR / "evaluation-causal-lm.yaml").read_text())
    evaluation["gate"].update(min_eval_size=20, min_macro_f1=0.0, min_accuracy=0.0, min_class_f1=0.0,
                              macro_f1_tolerance=1.0, max_cost_increase=100000.0, max_class_f1_drop=1.0)
    evaluation["generation"].update(min_valid_output=0.8, exact_match_tolerance=1.0)
    # windows as small as the tiny held-out set allows (~110 rows), calibrated quickly; answers wanted before a retrain
    drift = {**yaml.safe_load((PACKAGE_CONFIG_DIR / "drift.yaml").read_text()), "min_window_rows": 40,
             "calibration_replicates": 60}
    retrain = {**yaml.safe_load((PACKAGE_CONFIG_DIR / "retrain.yaml").read_text()), "min_new_labels": 20,
               "cooldown_minutes": 0}
    paths = {}
    for name, policy in {"training": training, "evaluation": evaluation, "drift": drift, "retrain": retrain}.items():
        paths[f"{name}_config"] = root / f"{name}.yaml"
        paths[f"{name}_config"].write_text(yaml.safe_dump(policy))
    return paths


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The first generative champion, shared by the tests in order."""
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks

    root = tmp_path_factory.mktemp("generative")
    tasks = extraction_tasks(generate_corpus(TICKETS, seed=0))
    base = build_tiny_causal_lm(root / "tiny-llama", (tasks["prompt"] + tasks["response"]).tolist())
    settings = Settings(home=root / "home", data_dir=root / "data", task="causal-lm", base_model_path=base,
                        registered_model_name="ticket-extractor", **_policies(root))
    c = customisation_defs(settings.customisation)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [c.raw_examples, c.curated_training_set, *c.data_checks, *c.training_assets],
            resources=resources_from_settings(settings), instance=instance,
            run_config=c.keys.run_config(raw_examples={"generator_rows": TICKETS}))
        assert result.success
        yield result, settings, c, instance


def _metadata(result: dg.ExecuteInProcessResult, c: CustomisationDefs, asset: str) -> dict:
    materialisation = result.asset_materializations_for_node(f"{c.keys.name}__{asset}")[0]
    return {key: value.value for key, value in materialisation.metadata.items()}


def test_first_generative_model_is_trained_evaluated_on_its_generations_and_promoted(loop):
    result, settings, c, _ = loop
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name)
    assert registry.alias_version("champion") == "1"
    raw = _metadata(result, c, "raw_examples")
    assert raw["valid_rows"] == TICKETS and "label_histogram" not in raw
    curated = _metadata(result, c, "curated_training_set")
    frame = pd.read_parquet(curated["path"])
    assert list(frame.columns) == ["id", "prompt", "response", "split", "source"]
    assert curated["content_hash"] == instructions_hash(frame)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    adapter = _metadata(result, c, "lora_adapter")
    run = registry.client.get_run(adapter["mlflow_run_id"])
    assert run.data.params["base_name"] == "tiny-llama" and run.data.params["lora_target_modules"].startswith("q_proj")
    assert registry.client.get_metric_history(run.info.run_id, "val_loss")  # step metrics from the Pipes process
    evaluation = _metadata(result, c, "evaluation")
    assert evaluation["gate_passed"] and evaluation["champion_version"] == "None"
    test_rows = int((frame["split"] == "test").sum())
    assert evaluation["test_rows"] == test_rows
    # metrics of real generations: the tiny model writes valid JSON but cannot yet tell most intents apart
    assert 0.8 <= evaluation["challenger_valid_output"] <= 1.0
    assert 0.0 <= evaluation["challenger_exact_match"] < 1.0
    assert evaluation["examples"].count("\n|") >= 3 and '"intent"' in evaluation["examples"]
    champion = _metadata(result, c, "champion")
    assert champion["model_version"] == "1" and champion["valid_output"] == evaluation["challenger_valid_output"]
    # its drift reference: its own generations for the held-out prompts, thresholds calibrated on them
    held_out = int((frame["split"] != "train").sum())
    assert champion["drift_reference_rows"] == held_out and champion["drift_false_alarm_rate"] == 0.01
    reference = pd.read_parquet(settings.reference_dir / "v1.parquet")
    assert reference["text"].tolist() == frame[frame["split"] != "train"]["prompt"].tolist()
    assert reference["confidence"].between(0, 1).all() and len(reference["embedding"].iloc[0]) == 64


def test_a_second_generative_model_is_compared_with_the_champion(loop):
    _, settings, c, instance = loop
    result = dg.materialize([*c.training_assets], resources=resources_from_settings(settings), instance=instance,
                            run_config=c.keys.run_config(lora_adapter={"seed": 1}))
    evaluation = _metadata(result, c, "evaluation")
    assert evaluation["challenger_version"] == "2" and evaluation["champion_version"] == "1"
    header = evaluation["comparison"].splitlines()[0]
    assert "challenger" in header and "champion" in header  # both models' metrics, side by side
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name)
    assert registry.alias_version("champion") == "2"  # the permissive gate passed it
    assert _metadata(result, c, "champion")["previous_champion"] == "1"


def test_an_incremental_run_warm_starts_on_new_instructions_with_a_replay_of_the_old(loop):
    from modelops.core.data.datagen import generate_corpus
    from modelops.core.data.instructions import extraction_tasks

    _, settings, c, instance = loop
    settings.raw_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.state / "assets" / "raw_examples.parquet", settings.raw_dir / "first.parquet")
    new = extraction_tasks(generate_corpus(120, seed=7))
    new.to_json(settings.raw_dir / "new.jsonl", orient="records", lines=True)
    result = dg.materialize(
        [c.raw_examples, c.curated_training_set, *c.data_checks, *c.training_assets],
        resources=resources_from_settings(settings), instance=instance,
        run_config=c.keys.run_config(raw_examples={"source": "files"}, lora_adapter={"mode": "incremental"}))
    adapter = _metadata(result, c, "lora_adapter")
    assert adapter["mode"] == "incremental" and adapter["model_version"] == "3"
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name)
    params = registry.client.get_run(adapter["mlflow_run_id"]).data.params
    curated = pd.read_parquet(_metadata(result, c, "curated_training_set")["path"])
    seen = set(pd.read_parquet(settings.curated_dir / f"{registry.version_info('2')['tags']['data_content_hash']}"
                                                      ".parquet")["id"])
    new_train = curated[(curated["split"] == "train") & ~curated["id"].isin(seen)]
    assert int(params["new_rows"]) == len(new_train) > 0
    # the severe share (no drift started this run): about a quarter of the rows replayed from the champion's data
    assert int(params["replay_rows"]) == adapter["replay_rows"] == round(len(new_train) * 0.25 / 0.75)
    assert registry.version_info("3")["tags"]["warm_start_version"] == "2"
    assert _metadata(result, c, "evaluation")["champion_version"] == "2"


def test_served_generations_are_captured_checked_for_drift_and_answered_feedback_retrains(loop):
    from starlette.testclient import TestClient

    from modelops.core.config_files import load_config
    from modelops.core.data.datagen import generate_corpus, generate_scenario
    from modelops.core.data.instructions import extraction_tasks
    from modelops.core.evaluation.evaluation_policy import EvaluationPolicy
    from modelops.core.monitoring.traffic import list_batches
    from modelops.core.monitoring.traffic_writer import GENERATION_SCHEMA, TrafficWriter
    from modelops.core.serving.generation import load_served_generator
    from modelops.core.training.base_model import describe_base_model
    from modelops.service.batcher import LoadedModel
    from modelops.service.requests import ServingConfig
    from modelops.service.serving import Endpoint, create_app

    _, settings, c, instance = loop
    registry = ModelRegistry(settings.tracking_uri, settings.registered_model_name)
    base = describe_base_model(settings.base_model_path, "causal-lm")
    max_new_tokens = load_config(settings.evaluation_config, EvaluationPolicy).generation.max_new_tokens
    version, generator = load_served_generator(registry, base, settings.state / "serving-cache", max_new_tokens, 128)
    resources = resources_from_settings(settings)

    def serve_and_tick(tickets: pd.DataFrame, cursor: str | None) -> dg.SensorResult:
        """Serve the tickets' prompts (captured in 2 batches), then one drift sensor tick."""
        endpoint = Endpoint(lambda: LoadedModel(registry.model_name, version, base.sha256, generator),
                            lambda: version, TrafficWriter(settings.production_dir, max_rows=32,
                                                           schema=GENERATION_SCHEMA), generative=True)
        with TestClient(create_app({c.keys.name: endpoint}, ServingConfig())) as client:
            for start in range(0, len(tickets), 8):
                prompts = tickets["prompt"][start:start + 8].tolist()
                assert client.post(f"/generate/{c.keys.name}", json={"prompts": prompts}).status_code == 200
        return c.drift_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))

    def drift_check(tick: dg.SensorResult) -> dict:
        check = next(e for e in tick.asset_events if isinstance(e, dg.AssetCheckEvaluation))
        return {key: value.value for key, value in check.metadata.items()}

    stable = serve_and_tick(extraction_tasks(generate_corpus(64, seed=21)), None)
    assert drift_check(stable)["n_current"] == 64 and not drift_check(stable)["drift_detected"]
    assert {"drift_score_response_tokens", "drift_score_confidence", "output_shares"} <= set(drift_check(stable))
    # production drifts: the tickets now arrive in another language
    shifted = extraction_tasks(generate_scenario("language_shift", 64, seed=3))
    first = serve_and_tick(shifted, stable.cursor)
    assert len(list_batches(settings.production_dir)) == 4
    assert drift_check(first)["drift_detected"] and drift_check(first)["n_current"] == 64
    assert not first.run_requests and "labels" in first.skip_reason.skip_message  # drift waits for answers
    queue = next(e for e in first.asset_events if isinstance(e, dg.AssetMaterialization))
    assert Path(queue.metadata["path"].value).is_file()
    # the operators answer the queued prompts: prompt,response rows in the feedback folder
    settings.feedback_dir.mkdir(parents=True)
    shifted.head(24).to_csv(settings.feedback_dir / "answers.csv", index=False)
    second = c.drift_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources))
    request = second.run_requests[0]
    retrained = dg.materialize([c.curated_training_set, *c.data_checks, *c.training_assets], resources=resources,
                               instance=instance, run_config=request.run_config, tags=request.tags)
    assert _metadata(retrained, c, "curated_training_set")["feedback_rows"] == 24
    adapter = _metadata(retrained, c, "lora_adapter")
    assert adapter["mode"] == request.run_config["ops"][f"{c.keys.name}__lora_adapter"]["config"]["mode"]
    assert adapter["drift_severity"] == request.tags["modelops/drift_severity"]


def test_bad_instruction_rows_are_quarantined_and_the_rest_ingested(loop, tmp_path):
    _, settings, c, instance = loop
    raw = settings.raw_dir
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    pd.DataFrame({"prompt": ["Summarise: the parcel is late", "Summarise: no answer", ""],
                  "response": ["Late parcel.", "", "orphan answer"]}).to_csv(raw / "instructions.csv", index=False)
    result = dg.materialize([c.raw_examples], resources=resources_from_settings(settings), instance=instance,
                            run_config=c.keys.run_config(raw_examples={"source": "files"}))
    metadata = _metadata(result, c, "raw_examples")
    assert (metadata["valid_rows"], metadata["quarantined_rows"]) == (1, 2)
    assert "missing_response" in metadata["quarantine_reasons"]
    quarantined = pd.read_parquet(metadata["quarantine_path"])
    assert sorted(quarantined["reason"]) == ["missing_response", "missing_text"]


def test_a_causal_lm_customisation_must_name_its_base(tmp_path):
    config = tmp_path / "modelops.yaml"
    config.write_text(yaml.safe_dump({"customisations": {"router": None, "extractor": {"task": "causal-lm"}}}))
    with pytest.raises(ConfigError, match="extractor has task causal-lm: set its base_model_path"):
        load_settings(config)


def test_classifier_and_causal_lm_customisations_side_by_side_get_their_own_bases_and_policies(tmp_path):
    config = tmp_path / "modelops.yaml"
    config.write_text(yaml.safe_dump({"home": str(tmp_path / "home"), "customisations": {
        "router": None, "extractor": {"task": "causal-lm", "base_model_path": str(tmp_path / "llm")}}}))
    settings = load_settings(config)
    router, extractor = settings.customisation_named("router"), settings.customisation_named("extractor")
    assert (router.task, extractor.task) == ("classifier", "causal-lm")
    assert router.training_config.name == "training.yaml"
    assert (extractor.training_config.name, extractor.evaluation_config.name) == (
        "training-causal-lm.yaml", "evaluation-causal-lm.yaml")
    resources = resources_from_settings(settings)
    bases = resources["base_model"]
    assert bases.path == "" and set(bases.customisations) == {"extractor"}
    assert bases.customisations["extractor"].task_type == "causal-lm"
    assert resources["lakes"].of("extractor").generative and not resources["lakes"].of("router").generative
