"""The training policy (config/training.yaml): hyper-parameters and the LoRA adapter's shape, as validated models.

Light on purpose (pydantic only): the Dagster code location derives the lora_adapter run config from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelops.core.config_files import PolicyModel
from modelops.core.monitoring.drift_config import SEVERITIES

TrainingMode = Literal["full", "incremental"]
RUN_OVERRIDES = ("epochs", "max_steps", "seed")  # fields a run's config may set over the policy file (with `mode`)


class LoraSettings(PolicyModel):
    """The adapter's shape: rank, scaling, dropout and which linear layers get LoRA matrices."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = Field(("query", "value"), min_length=1, strict=False)  # a YAML list is fine


class ReplayShares(PolicyModel):
    """Incremental runs: the share of the training rows replayed from the champion's data, by the severity of the
    drift that started the run. A run without one (started by hand) takes the severe share: an unknown shift is
    treated as a strong one. Defaults from published continual-learning results (Ibrahim et al. 2024, "Simple and
    Scalable Strategies to Continually Pre-train Large Language Models"): 1-5 % replay keeps nearly all old skill
    after a weak shift; about 25 %, with the learning rate re-warmed (as every run here is), matches retraining from
    scratch after a strong one (a new language)."""

    moderate: float = Field(0.05, ge=0, lt=1)
    severe: float = Field(0.25, ge=0, lt=1)

    @model_validator(mode="after")
    def _severe_replays_no_less(self) -> ReplayShares:
        if self.severe < self.moderate:
            raise ValueError(f"severe ({self.severe}) must be at least moderate ({self.moderate}): a stronger shift "
                             "replays no less of the old data")
        return self

    def share(self, severity: str | None) -> float:
        """The replay share for a run started by drift of `severity` ('moderate', 'severe'; None or 'none': not
        started by drift). ValueError for any other value."""
        if severity not in (None, *SEVERITIES):
            raise ValueError(f"unknown drift severity {severity!r}; expected one of {list(SEVERITIES)}")
        return self.moderate if severity == "moderate" else self.severe


class TrainingConfig(PolicyModel):
    """Hyper-parameters of one training run (config/training.yaml); every field is recorded with the run."""

    mode: TrainingMode = "full"
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, le=1)
    max_length: int = Field(64, ge=1)
    seed: int = Field(0, ge=0)
    early_stopping_patience: int = Field(2, ge=0)
    evaluations_per_epoch: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    replay_share: ReplayShares = ReplayShares()
    replay_per_old_label: int = Field(2, ge=0)  # every old class rehearsed at least this often (if it has the rows)
    compile_min_steps: int = Field(400, ge=0)  # GPU only: compile the transformer blocks for runs this long
    mixed_precision: bool = True  # bf16 autocast where the hardware computes bf16 natively (see `uses_bf16`)
    lora: LoraSettings = LoraSettings()

    @model_validator(mode="before")
    @classmethod
    def _replay_fraction_of_earlier_releases(cls, values: Any) -> Any:
        """A training.yaml (or a recorded run config) from before `replay_share` sets `replay_fraction` f, replayed
        rows per new row; it keeps meaning what it meant: share f / (1 + f) whatever the severity."""
        if not isinstance(values, dict) or "replay_fraction" not in values:
            return values
        values = dict(values)
        fraction = values.pop("replay_fraction")
        if "replay_share" in values:
            raise ValueError("set replay_share only: replay_fraction is its older form (replayed rows per new row)")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise ValueError(f"replay_fraction must be a number in [0, 1], got {fraction!r}")
        share = fraction / (1 + fraction)
        values["replay_share"] = {"moderate": share, "severe": share}
        return values

    def to_params(self) -> dict[str, str]:
        """Flat string params for experiment tracking."""
        flat = {k: v for k, v in self.model_dump().items() if k not in ("lora", "replay_share")}
        flat.update({f"lora_{k}": v for k, v in self.lora.model_dump().items()})
        flat.update({f"replay_share_{k}": v for k, v in self.replay_share.model_dump().items()})
        return {k: ",".join(v) if isinstance(v, (list, tuple)) else str(v) for k, v in flat.items()}
