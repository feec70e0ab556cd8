"""`modelops` commands: thin wrappers over modelops.core and the Dagster definitions."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from modelops.app.instance import execute_job, prepare_environment, run_job
from modelops.core.config_files import ConfigError
from modelops.core.data.drift_scenarios import DEMO_SCENARIO, SCENARIOS
from modelops.core.defaults import (
    DAGSTER_UI_PORT,
    GENERATED_ROWS,
    LOOPBACK,
    LOOPBACK_HOSTS,
    MLFLOW_UI_PORT,
    REPRODUCE_TOLERANCE,
)
from modelops.settings import Settings, load_settings

log = logging.getLogger("modelops")


def customisation_for_model(settings: Settings, model_name: str | None) -> Settings:
    """The customisation whose registered model is `model_name` (None: the only customisation)."""
    if model_name is None:
        return settings.customisation_named(None)
    every = settings.customisation_settings()
    for c in every:
        if c.registered_model_name == model_name:
            return c
    raise ConfigError(f"No customisation registers the model {model_name!r}; configured: "
                        f"{', '.join(c.registered_model_name for c in every)}")


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.core.atomic import write_atomic
    from modelops.core.data.datagen import generate_corpus, generate_scenario

    frame = (generate_scenario(args.scenario, args.rows, args.seed, args.severity) if args.scenario
             else generate_corpus(args.rows, args.seed))
    out = Path(args.out) if args.out else settings.customisation_named(args.customisation).raw_dir / "generated.csv"
    write_atomic(out, lambda tmp: frame.to_csv(tmp, index=False))
    print(f"wrote {len(frame)} examples to {out}")
    return 0


def cmd_materialize(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job for the named customisation, or for each customisation in turn."""
    from modelops.defs.resources import CustomisationKeys

    every = ([settings.customisation_named(args.customisation)] if args.customisation
             else settings.customisation_settings())
    failed = 0
    for c in every:
        job = CustomisationKeys(c.customisation).job(args.job)
        ok = run_job(job)
        failed += not ok
        print(f"{job}: {'succeeded' if ok else 'FAILED (see the Dagster UI: modelops ui)'}")
    return 1 if failed else 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.app.init_customisation import init_customisation
    from modelops.core.data.onboarding import OnboardingError

    try:
        result = init_customisation(args.name, Path(args.data), args.text_column, args.label_column, settings,
                                    Path.cwd(), force=args.force, task=args.task,
                                    base=Path(args.base) if args.base else None)
    except OnboardingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary.markdown())
    print(f"\ncustomisation {result.name} (registered model {result.entry['registered_model_name']}):")
    for path in result.written:
        print(f"  wrote {path}")
    print(f"\nnext:\n  edit {result.entry['evaluation_config']}   # what an error on each label costs you\n"
          f"  modelops materialize bootstrap_job --customisation {result.name}   # train, evaluate, promote\n"
          f"  modelops serve   # POST /{'generate' if args.task == 'causal-lm' else 'predict'}/{result.name}\n"
          f"  modelops drift-check --customisation {result.name}   # once traffic has been captured")
    return 0


def cmd_drift_check(args: argparse.Namespace, settings: Settings) -> int:
    """The traffic_drift check on the newest captured traffic, run on the persistent instance (UI check history)."""
    from modelops.defs.resources import CustomisationKeys

    c = settings.customisation_named(args.customisation)
    keys = CustomisationKeys(c.customisation)
    result = execute_job(keys.job("drift_check_job"), keys.check_run_config("traffic_drift", rows=args.rows))
    if not result.success:
        failure = result.get_step_failure_events()[0].step_failure_data
        reason = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
        print(f"{c.customisation}: cannot decide: {reason}", file=sys.stderr)
        return 2
    evaluation = result.get_asset_check_evaluations()[0]
    meta = {key: value.value for key, value in evaluation.metadata.items()}
    verdict = f"DRIFT ({meta['severity']})" if meta["drift_detected"] else "no drift"
    print(f"{c.customisation}: {verdict} on {meta['n_current']} rows from {meta['batches']} batch(es), champion "
          f"v{meta['champion_version']}\n\n{meta['scores_vs_thresholds']}\n\nlabel-free accuracy estimate: "
          f"{meta['estimated_accuracy_current']:.3f} (reference {meta['estimated_accuracy_reference']:.3f})\n"
          f"report: {meta['evidently_report']}")
    return 1 if meta["drift_detected"] else 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve every customisation's champion: a classifier as its evaluation chose (int8 or fp32 ONNX, else PyTorch) at
    /predict, a causal LM at /generate; with `serving_runtime: shared-base` and several classifiers, PyTorch holds the
    base once and each champion adds only its adapter (swapped on its own when its alias moves)."""
    from modelops.core.evaluation.abstention import ServedAbstention
    from modelops.core.monitoring.traffic_writer import TrafficWriter
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.serving.predictor import SharedBases
    from modelops.core.serving.served_model import load_champion
    from modelops.core.training.base_model import describe_base_model
    from modelops.service.batcher import LoadedModel
    from modelops.service.requests import ServingConfig
    from modelops.service.serving import Endpoint, create_app, run_server

    if args.host not in LOOPBACK_HOSTS and not args.token:
        print("refusing to listen beyond loopback without --token (bearer authentication)", file=sys.stderr)
        return 2
    every = settings.customisation_settings()
    classifiers = [c for c in every if c.task == "classifier"]
    base = describe_base_model(settings.resolved_base_model_path) if classifiers else None
    shared = SharedBases(base) if len(classifiers) > 1 and settings.serving_runtime == "shared-base" else None

    def endpoint(c: Settings) -> Endpoint:
        if c.task == "causal-lm":
            return _generative_endpoint(c, args)
        registry = ModelRegistry(c.tracking_uri, c.registered_model_name, c.mlflow_artifact_root)

        def load() -> LoadedModel:
            served = load_champion(registry, base, c.state / "serving-cache", shared)
            return LoadedModel(registry.model_name, served.version, base.sha256, served.classifier, served.release,
                               ServedAbstention.from_tags(served.tags), served.variant, served.reason)

        writer = TrafficWriter(c.production_dir, max_rows=args.batch_rows, max_age_seconds=args.batch_seconds)
        return Endpoint(load, lambda: registry.alias_version("champion"), writer)

    config = ServingConfig(host=args.host, port=args.port, bearer_token=args.token or None,
                           max_text_chars=settings.max_text_chars, reload_poll_seconds=args.reload_seconds,
                           redact_traffic=settings.redact_traffic)
    run_server(create_app({c.customisation: endpoint(c) for c in every}, config), config)
    return 0


def _generative_endpoint(c: Settings, args: argparse.Namespace):
    """A causal-lm customisation's endpoint: its champion on its own base, responses cut at the evaluation policy's
    max_new_tokens, prompts at the training max_length; generations captured with GENERATION_SCHEMA."""
    from modelops.core.config_files import load_config
    from modelops.core.evaluation.evaluation_policy import EvaluationPolicy
    from modelops.core.monitoring.traffic_writer import GENERATION_SCHEMA, TrafficWriter
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.serving.generation import load_served_generator
    from modelops.core.training.base_model import describe_base_model
    from modelops.core.training.training_config import TrainingConfig
    from modelops.service.batcher import LoadedModel
    from modelops.service.serving import Endpoint

    registry = ModelRegistry(c.tracking_uri, c.registered_model_name, c.mlflow_artifact_root)
    base = describe_base_model(c.resolved_base_model_path, "causal-lm")
    max_new_tokens = load_config(c.evaluation_config, EvaluationPolicy).generation.max_new_tokens
    max_prompt_tokens = load_config(c.training_config, TrainingConfig).max_length

    def load() -> LoadedModel:
        version, generator = load_served_generator(registry, base, c.state / "serving-cache", max_new_tokens,
                                                   max_prompt_tokens)
        return LoadedModel(registry.model_name, version, base.sha256, generator)

    writer = TrafficWriter(c.production_dir, max_rows=args.batch_rows, max_age_seconds=args.batch_seconds,
                           schema=GENERATION_SCHEMA)
    return Endpoint(load, lambda: registry.alias_version("champion"), writer, generative=True)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.app.demo import run_demo

    return run_demo(settings.customisation_named(args.customisation), scenario=args.scenario, port=args.port,
                    fresh=not args.keep_state, rows=args.rows, epochs=args.epochs, severity=args.severity)


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.registry.store import RegistryError

    c = customisation_for_model(settings, args.name)
    registry = ModelRegistry(c.tracking_uri, c.registered_model_name, c.mlflow_artifact_root)
    try:
        restored = registry.rollback(reason=args.reason)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{registry.model_name}: champion restored to version {restored}")
    return 0


def cmd_reproduce(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.registry.store import RegistryError
    from modelops.core.training.base_model import BaseModelError
    from modelops.core.training.reproduce import ReproduceError, reproduce

    c = customisation_for_model(settings, args.name)
    registry = ModelRegistry(c.tracking_uri, args.name, c.mlflow_artifact_root)
    try:
        result = reproduce(registry, args.version, c.curated_dir, c.resolved_base_model_path, args.tolerance)
    except (ReproduceError, RegistryError, BaseModelError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(result.markdown())
    registry.set_version_tags(args.version, {"reproduced": (
        f"{'matched' if result.matches else 'DIFFERED'} within {args.tolerance} at "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}")})
    return 0 if result.matches else 1


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.app.migrate import MigrationError, run_migration
    from modelops.core.registry.store import RegistryError
    from modelops.core.training.base_model import BaseModelError

    try:
        outcomes, path = run_migration(settings, Path(args.base), args.epochs)
    except (MigrationError, BaseModelError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path.read_text())
    print(f"report: {path}")
    if any(o.status == "promoted" for o in outcomes):
        print(f"Serving follows the new champions. Set base_model_path: {Path(args.base).resolve()} in modelops.yaml "
              "(or MODELOPS_BASE_MODEL_PATH) so that retraining uses the new base too.")
    statuses = {o.status for o in outcomes}
    return 2 if "failed" in statuses else 1 if "refused" in statuses else 0


def _dagster_run(run_id: str) -> dict | None:
    """Status and tags of a run in this machine's Dagster instance, or None when it is not there."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        return {"status": run.status.value, "tags": dict(run.tags)} if run else None


def cmd_lineage(args: argparse.Namespace, settings: Settings) -> int:
    from modelops.core.registry.lineage import champion_history, version_lineage
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.registry.store import RegistryError

    registry = ModelRegistry(settings.tracking_uri, args.name, settings.mlflow_artifact_root)
    try:
        links = version_lineage(registry, args.version, _dagster_run)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# {args.name} version {args.version}\n")
    for link in links:
        print(f"- {link.stage}: {link.summary}\n    {link.reference}")
    print("\n# champion history\n")
    for start, end, version in champion_history(registry):
        print(f"- v{version}: {start} -> {end or 'now'}")
    return 0


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    command = [sys.executable, "-m", "dagster", "dev", "-h", LOOPBACK, "-p", str(args.port)]
    command += ["-w", str(workspace)] if workspace.is_file() else ["-m", "modelops.definitions"]
    return subprocess.call(command)


def cmd_mlflow_ui(args: argparse.Namespace, settings: Settings) -> int:
    if settings.mlflow_artifact_root is None:
        print(f"the tracking URI is an MLflow server: open {settings.tracking_uri} instead", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "mlflow", "ui", "--host", LOOPBACK, "--port", str(args.port),
                            "--backend-store-uri", settings.tracking_uri,
                            "--default-artifact-root", settings.mlflow_artifact_root.as_uri()])


def _severity(value: str) -> float:
    """A drift severity in [0, 1], refused before the demo spends minutes on its first training run."""
    from modelops.core.data.datagen import check_severity

    try:
        parsed: object = float(value)
    except ValueError:
        parsed = value  # not a number: refused below, named as typed
    try:
        return check_severity(parsed)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write the built-in data set (or a drift scenario) as CSV")
    gen.add_argument("--rows", type=int, default=GENERATED_ROWS)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--scenario", choices=sorted(SCENARIOS))
    gen.add_argument("--severity", type=float, default=1.0)
    gen.add_argument("--out", help="output CSV (default: the customisation's raw/generated.csv)")
    gen.add_argument("--customisation", help="whose raw folder (default: the only customisation)")
    gen.set_defaults(handler=cmd_generate)

    mat = sub.add_parser("materialize", help="run a job for each customisation (data_job, bootstrap_job, retrain_job)")
    mat.add_argument("job", nargs="?", default="bootstrap_job")
    mat.add_argument("--customisation", help="only this customisation's job (default: every customisation's)")
    mat.set_defaults(handler=cmd_materialize)

    init = sub.add_parser("init", help="start a customisation from your own labelled file: validate it, write its "
                                       "modelops.yaml entry and policies")
    init.add_argument("name", help="customisation name (letters, digits, underscores)")
    init.add_argument("--data", required=True, help="CSV, Parquet or JSON-lines file of labelled examples")
    init.add_argument("--text-column", default="text")
    init.add_argument("--label-column", default="label")
    init.add_argument("--task", choices=["classifier", "causal-lm"], default="classifier",
                      help="causal-lm: the file holds prompt,response rows and --base names the causal LM to customise")
    init.add_argument("--base", default="", help="local Hugging Face causal-LM folder (--task causal-lm)")
    init.add_argument("--force", action="store_true", help="overwrite the customisation's existing files")
    init.set_defaults(handler=cmd_init)

    drift = sub.add_parser("drift-check", help="check the newest captured traffic for drift (exit 0 none, 1 drift, "
                                               "2 cannot decide)")
    drift.add_argument("--customisation", help="whose traffic (default: the only customisation)")
    drift.add_argument("--rows", type=int, default=0, help="newest valid rows to check (default: min_window_rows)")
    drift.set_defaults(handler=cmd_drift_check)

    serve = sub.add_parser("serve", help="serve each customisation's champion over HTTP "
                                         "(POST /predict/<customisation>) and capture its traffic to its production/ "
                                         "folder")
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token", default=os.environ.get("MODELOPS_SERVE_TOKEN", ""),
                       help="bearer token required on /predict and /model (env MODELOPS_SERVE_TOKEN)")
    serve.add_argument("--batch-rows", type=int, default=500, help="rotate the traffic batch file at this many rows")
    serve.add_argument("--batch-seconds", type=float, default=60.0, help="... or after this many seconds")
    serve.add_argument("--reload-seconds", type=float, default=5.0, help="how often to check the champion alias")
    serve.set_defaults(handler=cmd_serve)

    demo = sub.add_parser("demo", help="the whole loop, headless: train, serve, drift, retrain, promote, reload")
    demo.add_argument("--keep-state", action="store_true", help="do not wipe .modelops/ and data/ first")
    demo.add_argument("--scenario", default=DEMO_SCENARIO, choices=sorted(SCENARIOS))
    demo.add_argument("--severity", type=_severity, default=0.8,
                      help="drift strength: 0 = the corpus unchanged, 1 = full drift (default 0.8)")
    demo.add_argument("--port", type=int, default=8765)
    demo.add_argument("--rows", type=int, default=GENERATED_ROWS, help="size of the generated corpus")
    demo.add_argument("--epochs", type=int, help="epochs of the first training run (default: training.yaml)")
    demo.add_argument("--customisation", help="which customisation runs the loop (default: the only one)")
    demo.set_defaults(handler=cmd_demo)

    rollback = sub.add_parser("rollback", help="restore the previous champion")
    rollback.add_argument("name", nargs="?", help="registered-model name (default: from settings)")
    rollback.add_argument("--reason", default="manual rollback")
    rollback.set_defaults(handler=cmd_rollback)

    repro = sub.add_parser("reproduce", help="rebuild a model version from its recorded data, config, base and seed")
    repro.add_argument("name", help="registered-model name")
    repro.add_argument("version")
    repro.add_argument("--tolerance", type=float, default=REPRODUCE_TOLERANCE,
                       help="allowed macro-F1 difference (absolute)")
    repro.set_defaults(handler=cmd_reproduce)

    migrate = sub.add_parser("migrate", help="move every customisation to a new base model: retrain, compare, gate")
    migrate.add_argument("--base", required=True, help="local Hugging Face folder of the new base model")
    migrate.add_argument("--epochs", type=int, help="epochs of the migration training (default: training.yaml)")
    migrate.set_defaults(handler=cmd_migrate)

    lineage = sub.add_parser("lineage", help="drift event -> batches -> data -> training -> evaluation -> promotion")
    lineage.add_argument("name", help="registered-model name")
    lineage.add_argument("version")
    lineage.set_defaults(handler=cmd_lineage)

    ui = sub.add_parser("ui", help="open the Dagster UI (dagster dev) on 127.0.0.1")
    ui.add_argument("--port", type=int, default=DAGSTER_UI_PORT)
    ui.set_defaults(handler=cmd_ui)

    mlflow_ui = sub.add_parser("mlflow-ui", help="open the MLflow UI on 127.0.0.1")
    mlflow_ui.add_argument("--port", type=int, default=MLFLOW_UI_PORT)
    mlflow_ui.set_defaults(handler=cmd_mlflow_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow.store.db.utils", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings()
        prepare_environment(settings)
        return int(args.handler(args, settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
