"""`modelops init`: start a customisation from the owner's own labelled file (or, with `--task causal-lm`, a
prompt,response file and the local causal-LM folder to customise).

Writes, next to `modelops.yaml` (working directory): the customisation's entry in `modelops.yaml` (registered model
name, data folder, column names, policy files), its policies under `policies/<name>/` (an evaluation policy listing
every label of the data, gate defaults for its size, drift/retrain/training policies) and a copy of the file in
its data folder's `raw/`. Nothing existing is overwritten without `force`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.core.atomic import write_text_atomic
from modelops.core.config_files import read_mapping
from modelops.core.data.curate import SplitFractions
from modelops.core.data.onboarding import (
    DataSummary,
    InstructionSummary,
    OnboardingError,
    evaluation_policy,
    generation_evaluation_policy,
    summarise_data,
    summarise_instructions,
)
from modelops.settings import CUSTOMISATION_NAME, PACKAGE_CONFIG_DIR, TASK_POLICY_FILES, Settings

SMALLEST_MIN_WINDOW_ROWS = 50


@dataclass(frozen=True)
class InitResult:
    name: str
    summary: DataSummary | InstructionSummary
    written: list[Path]
    entry: dict[str, str]


def drift_policy(summary: DataSummary | InstructionSummary) -> str:
    """The shipped drift policy; with fewer expected held-out rows than two of its smallest windows, min_window_rows
    is half of them (at least 50), so that the champion's reference can calibrate at least one window size."""
    from modelops.core.config_files import load_config
    from modelops.core.monitoring.drift_config import DriftConfig

    shipped = PACKAGE_CONFIG_DIR / "drift.yaml"
    text = shipped.read_text(encoding="utf-8")
    default = load_config(shipped, DriftConfig).min_window_rows
    fractions = SplitFractions()
    held_out = int(summary.valid * (fractions.validation + fractions.test))
    window = min(default, max(SMALLEST_MIN_WINDOW_ROWS, held_out // 2))
    if window == default:
        return text
    note = (f"# modelops init: about {held_out} held-out rows are expected (validation + test), so windows start at "
            f"{window} rows instead of {default}.\n")
    return text.replace(f"\nmin_window_rows: {default}\n", f"\n{note}min_window_rows: {window}\n")


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _generative(data: Path, base: Path | None, max_text_chars: int) -> tuple[InstructionSummary, str]:
    """The summary of a prompt,response file and its evaluation policy; responses are cut at the longest response of
    the data in the base's tokens (end of sequence included) plus a quarter, at least 16."""
    import math

    from modelops.core.training.base_model import BaseModelError, describe_base_model, load_tokenizer

    if base is None:
        raise OnboardingError("--task causal-lm needs --base: the local Hugging Face causal-LM folder to customise")
    summary = summarise_instructions(data, max_text_chars)
    try:
        tokenizer = load_tokenizer(describe_base_model(Path(base), "causal-lm"))
    except BaseModelError as exc:
        raise OnboardingError(str(exc)) from exc
    longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in summary.responses) + 1
    return summary, generation_evaluation_policy(summary, max(16, math.ceil(longest * 1.25)))


def init_customisation(name: str, data: Path, text_column: str, label_column: str, settings: Settings,
                       root: Path, force: bool = False, task: str = "classifier",
                       base: Path | None = None) -> InitResult:
    """Validate `data` and write the customisation `name` under `root` (where modelops.yaml lives); a causal-lm
    customisation reads prompt,response rows and customises the causal LM in `base`."""
    if not CUSTOMISATION_NAME.match(name):
        raise OnboardingError(f"name {name!r} must start with a letter and hold only letters, digits and underscores "
                              "(it names Dagster assets, jobs and sensors)")
    summary: DataSummary | InstructionSummary
    if task == "causal-lm":
        summary, evaluation = _generative(data, base, settings.max_text_chars)
        columns = {"task": task, "base_model_path": str(Path(base).resolve())}  # type: ignore[arg-type]
    else:
        summary = summarise_data(data, text_column, label_column, settings.max_text_chars)
        evaluation = evaluation_policy(summary)
        columns = {"text_column": text_column, "label_column": label_column}
    config_path = root / "modelops.yaml"
    config = read_mapping(config_path) if config_path.is_file() else {}
    customisations = dict(config.get("customisations") or {})
    policies = root / "policies" / name
    data_dir = settings.data_dir / name
    copy = data_dir / "raw" / Path(data).name
    training = TASK_POLICY_FILES["causal-lm" if task == "causal-lm" else "classifier"]["training_config"]
    files = {policies / "evaluation.yaml": evaluation, policies / "drift.yaml": drift_policy(summary),
             policies / "retrain.yaml": (PACKAGE_CONFIG_DIR / "retrain.yaml").read_text(encoding="utf-8"),
             policies / "training.yaml": training.read_text(encoding="utf-8")}
    existing = [str(p) for p in [*files, copy] if p.exists() and p.resolve() != Path(data).resolve()]
    if name in customisations:
        existing.insert(0, f"{config_path} (customisations.{name})")
    if existing and not force:
        raise OnboardingError(f"customisation {name!r} already has: {', '.join(existing)}; pass --force to overwrite")
    for path, text in files.items():
        write_text_atomic(text, path)
    if copy.resolve() != Path(data).resolve():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, copy)
    entry = {"registered_model_name": name.replace("_", "-"), "data_dir": _relative(data_dir, root), **columns,
             **{f"{kind}_config": _relative(policies / f"{kind}.yaml", root)
                for kind in ("evaluation", "drift", "retrain", "training")}}
    customisations[name] = entry
    write_text_atomic(yaml.safe_dump({**config, "customisations": customisations}, sort_keys=False), config_path)
    return InitResult(name, summary, [config_path, *files, copy], entry)
