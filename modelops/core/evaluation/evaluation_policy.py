"""The evaluation policy (config/evaluation.yaml): the owner's business costs, promotion gate, abstention fallback
and which optimised serving variants may serve.

Costs are in the owner's currency units; a (true, predicted) pair costs, in this order: `correct_cost` when right,
its `pair_costs` entry, its true class's `missed_class_costs` entry, else `default_error_cost`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from modelops.core.config_files import ConfigError, PolicyModel

if TYPE_CHECKING:
    import numpy as np

Cost = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1)]
Label = Annotated[str, Field(min_length=1)]


class PairCost(PolicyModel):
    """What one specific misrouting costs."""

    true: Label
    predicted: Label
    cost: Cost

    @model_validator(mode="before")
    @classmethod
    def _yaml_true_key(cls, values: Any) -> Any:
        """YAML 1.1 reads an unquoted `true:` key as the boolean True."""
        return {("true" if k is True else k): v for k, v in values.items()} if isinstance(values, dict) else values

    @model_validator(mode="after")
    def _an_error(self) -> PairCost:
        if self.true == self.predicted:
            raise ValueError(f"pair ({self.true!r}, {self.predicted!r}) is a correct prediction; use correct_cost")
        return self


class CostModel(PolicyModel):
    """Business cost of a (true, predicted) pair."""

    written_keys = ("default_error_cost", "correct_cost", "missed_class_costs", "pair_costs")
    default_error_cost: Cost
    correct_cost: Cost = 0.0
    missed_class_costs: dict[Label, Cost] = {}
    pair_costs: list[PairCost] = []
    allow_default_costs: bool = False  # the owner accepts a policy that prices none of the data's labels
    _pairs: dict[tuple[str, str], float] = PrivateAttr(default_factory=dict)

    @field_validator("pair_costs")
    @classmethod
    def _distinct_pairs(cls, pairs: list[PairCost]) -> list[PairCost]:
        seen = set()
        for index, pair in enumerate(pairs):
            if (pair.true, pair.predicted) in seen:
                raise ValueError(f"[{index}] duplicate pair {pair.true} -> {pair.predicted}")
            seen.add((pair.true, pair.predicted))
        return pairs

    def model_post_init(self, context: Any) -> None:
        self._pairs.update({(p.true, p.predicted): p.cost for p in self.pair_costs})

    def cost(self, true: str, predicted: str) -> float:
        """Cost of predicting `predicted` for a `true` example: correct -> pair -> missed class -> default."""
        if true == predicted:
            return float(self.correct_cost)
        if (true, predicted) in self._pairs:
            return float(self._pairs[(true, predicted)])
        if true in self.missed_class_costs:
            return float(self.missed_class_costs[true])
        return float(self.default_error_cost)

    def cost_matrix(self, label_names: Sequence[str]) -> np.ndarray:
        """(k, k) matrix of costs, rows true, columns predicted, in `label_names` order."""
        import numpy as np

        return np.array([[self.cost(t, p) for p in label_names] for t in label_names], dtype=float)

    def labels(self) -> set[str]:
        """Every label the cost model mentions."""
        return {label for pair in self._pairs for label in pair} | set(self.missed_class_costs)

    def check_labels(self, label_names: Sequence[str], path: Path | None = None) -> None:
        """ConfigError if the cost model names a label the task does not have (a typo)."""
        unknown = sorted(self.labels() - set(label_names))
        if unknown:
            raise ConfigError(f"labels {unknown} are not task labels {list(label_names)}; fix the spelling", path,
                              "cost_model")


class GateRules(PolicyModel):
    """When a challenger may replace the champion (see config/evaluation.yaml for each rule)."""

    written_keys = ("min_eval_size", "min_macro_f1", "min_accuracy", "min_class_f1", "macro_f1_tolerance",
                    "max_cost_increase", "max_class_f1_drop")
    min_eval_size: int = Field(50, ge=1)
    min_macro_f1: Share = 0.5
    min_accuracy: Share = 0.6
    min_class_f1: Share = 0.1
    macro_f1_tolerance: Share = 0.01
    max_cost_increase: Cost = 0.0
    max_class_f1_drop: Share = 0.10


class AbstentionPolicy(PolicyModel):
    """What the owner does with requests the model is unsure of, and what that costs per request."""

    fallback_label: Label
    fallback_cost: Cost

    def check_not_a_model_label(self, label_names: Sequence[str], path: Path | None = None) -> None:
        """The fallback label must not be one the model predicts: the server could not tell the two apart."""
        if self.fallback_label in label_names:
            raise ConfigError(f"'{self.fallback_label}' is one of the model's labels; name the fallback something "
                              "the model never predicts (e.g. human_review)", path, "abstention.fallback_label")


class ServingPolicy(PolicyModel):
    """Which optimised variants may serve a challenger the gate passed, and how close to its PyTorch model each must
    stay on the same test split; the fastest variant listed that stays close enough serves, else PyTorch does."""

    variants: list[Literal["onnx-int8", "onnx-fp32"]] = ["onnx-int8", "onnx-fp32"]
    max_macro_f1_drop: Share = 0.005  # 0.5 macro-F1 points; per-class drops are held to gate.max_class_f1_drop


class GenerationPolicy(PolicyModel):
    """How a causal-LM customisation's responses are scored and gated (the `generation:` section).

    A `text` response is right when it equals the reference after normalisation (Unicode NFKC, case, whitespace)
    and costs cost_model.default_error_cost otherwise. A `json` response must be one JSON object with every field of
    its reference (else it costs `invalid_output_cost`); a valid one costs the cost model's price of its
    `decision_field` (true, predicted) pair plus the `field_costs` of every other field it gets wrong. The decision
    field is also scored like a classifier's label, so the gate's macro-F1, accuracy and per-class rules apply to it.
    """

    written_keys = ("output", "max_new_tokens", "invalid_output_cost", "min_valid_output", "min_exact_match",
                    "exact_match_tolerance")
    output: Literal["text", "json"] = "text"
    max_new_tokens: int = Field(64, ge=1, le=4096)  # responses are cut here, in evaluation and when served
    decision_field: Label | None = None
    field_costs: dict[Label, Cost] = {}
    invalid_output_cost: Cost = 1.0
    min_valid_output: Share = 0.95  # share of responses that must be valid JSON objects (json output)
    min_exact_match: Share = 0.0
    exact_match_tolerance: Share = 0.01  # challenger exact match may be at most this far below the champion's

    @model_validator(mode="after")
    def _fields_need_json(self) -> GenerationPolicy:
        if self.output == "text" and (self.decision_field or self.field_costs):
            raise ValueError("decision_field and field_costs need output: json (a text response has no fields)")
        if self.decision_field in self.field_costs:
            raise ValueError(f"the decision field {self.decision_field!r} is priced by cost_model; remove it from "
                             "field_costs")
        return self


class EvaluationPolicy(PolicyModel):
    """The whole evaluation.yaml: costs and gate (required); abstention (optional: without it, answer everything),
    serving (optional: without it, the defaults above) and generation (for causal-LM customisations)."""

    cost_model: CostModel
    gate: GateRules
    abstention: AbstentionPolicy | None = None
    serving: ServingPolicy = ServingPolicy()
    generation: GenerationPolicy = GenerationPolicy()
