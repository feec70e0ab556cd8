"""What a training run needs around the training itself: the warm-start inputs of an incremental run, and the clean-up
of runs whose process was killed."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.core.tags import MlflowTag
from modelops.core.train import TrainingConfigError, incremental_training_set, partial_dir

if TYPE_CHECKING:
    import pandas as pd

    from modelops.core.registry import ModelRegistry


@dataclass(frozen=True)
class IncrementalInputs:
    """New + replayed examples and the champion adapter they warm-start from (None: no champion, train from the
    base on every example)."""

    train: pd.DataFrame
    adapter: Path | None
    champion: str | None
    new_rows: int


def incremental_inputs(curated_train: pd.DataFrame, registry: ModelRegistry, home: Path, curated_dir: Path,
                       replay: float, seed: int, base_sha256: str) -> IncrementalInputs:
    """The champion's adapter (downloaded under `home`/adapters) and the new rows plus a `replay` share of the rows it
    was trained on; TrainingConfigError when it cannot warm-start (another base, its training data gone)."""
    import pandas as pd

    champion = registry.alias_version("champion")
    if champion is None:
        return IncrementalInputs(curated_train, None, None, len(curated_train))
    info = registry.version_info(champion)
    if info["tags"].get("base_sha256", base_sha256) != base_sha256:
        raise TrainingConfigError(
            f"The champion v{champion} runs on base {info['tags'].get('base_name')} (sha256 "
            f"{info['tags']['base_sha256'][:12]}), not on the configured base: an adapter cannot warm-start across "
            "bases. Set base_model_path to the champion's base (after `modelops migrate`) or run a full retrain.")
    adapter = registry.download_adapter(champion, home / "adapters" / f"champion-v{champion}")
    seen_path = curated_dir / f"{info['tags'].get('data_content_hash', '')}.parquet"
    if not seen_path.is_file():
        raise TrainingConfigError(f"The champion's training data {seen_path} is gone; run a full retrain instead.")
    seen = pd.read_parquet(seen_path, columns=["id"])["id"]
    frame = incremental_training_set(curated_train, set(seen), replay, seed)
    return IncrementalInputs(frame, adapter, champion, int((~frame["id"].isin(seen)).sum()))


def remove_leftovers_of_killed_runs(registry: ModelRegistry, home: Path) -> list[tuple[Path, str]]:
    """Finalise the MLflow runs of killed training processes and delete what they left on disk: their inputs
    (`training/<dagster run>`) and unregistered adapter folders (`adapters/<mlflow run>` and its `.partial`).
    Returns (folder, MLflow run id) of each folder removed."""
    removed = []
    for run in registry.finalise_orphaned_runs():
        adapter = home / "adapters" / run.info.run_id
        leftovers = [adapter, partial_dir(adapter)]
        if dagster_run := run.data.tags.get(MlflowTag.DAGSTER_RUN_ID):
            leftovers.append(home / "training" / dagster_run)
        for folder in (f for f in leftovers if f.exists()):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append((folder, run.info.run_id))
    return removed
