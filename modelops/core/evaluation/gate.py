"""The promotion gate: rules from config -> a decision with one check per rule and readable reasons.

Without a champion only the absolute floors apply. With one, the challenger must also be comparable (same
labels, same evaluation set) and not worse than the champion beyond the configured tolerances.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from modelops.core.evaluation.evaluate import EvaluationReport
from modelops.core.evaluation.evaluation_policy import GateRules
from modelops.core.markdown import markdown_table

log = logging.getLogger(__name__)

EPSILON = 1e-9  # float slack so that e.g. 0.83 - 0.02 >= 0.81 holds


@dataclass(frozen=True)
class GateCheck:
    """One rule applied to the challenger."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger may be promoted, and every check behind that answer."""

    passed: bool
    checks: list[GateCheck]

    @property
    def reasons(self) -> list[str]:
        """Details of the failed checks (empty when the gate passed)."""
        return [check.detail for check in self.checks if not check.passed]

    def markdown(self) -> str:
        """Verdict line plus a check | result | detail table."""
        failed = len(self.reasons)
        verdict = "passed" if self.passed else f"failed ({failed} of {len(self.checks)} checks)"
        rows = [[check.name, "pass" if check.passed else "FAIL", check.detail] for check in self.checks]
        return f"**Promotion gate {verdict}**\n\n" + markdown_table(["check", "result", "detail"], rows)


def decide(challenger: EvaluationReport, champion: EvaluationReport | None, rules: GateRules,
           compared: EvaluationReport | None = None) -> GateDecision:
    """Apply `rules` to the challenger (and against the champion when there is one). `compared` is the challenger
    on the champion's evaluation rows when the challenger knows new labels (the champion is evaluated on the rows of
    its own labels): the comparison uses it, the floors the whole report."""
    checks = absolute_checks(challenger, rules)
    if champion is not None:
        checks += relative_checks(compared if compared is not None else challenger, champion, rules)
    decision = GateDecision(passed=all(check.passed for check in checks), checks=checks)
    verdict = "passed" if decision.passed else "failed"
    log.info("promotion gate %s: %s", verdict, decision.reasons or "all checks passed")
    return decision


def absolute_checks(challenger: EvaluationReport, rules: GateRules) -> list[GateCheck]:
    """Floors that every model must clear, including the first one."""
    n, size = challenger.n, rules.min_eval_size
    f1, min_f1 = challenger.macro_f1, rules.min_macro_f1
    acc, min_acc = challenger.accuracy, rules.min_accuracy
    return [
        GateCheck("eval_size", n >= size, f"evaluation set n={n} {sign_for(n >= size, '>=', '<')} minimum {size}"),
        GateCheck(
            "min_macro_f1",
            f1 >= min_f1 - EPSILON,
            f"macro-F1 {f1:.3f} {sign_for(f1 >= min_f1 - EPSILON, '>=', '<')} floor {min_f1:.3f}",
        ),
        GateCheck(
            "min_accuracy",
            acc >= min_acc - EPSILON,
            f"accuracy {acc:.3f} {sign_for(acc >= min_acc - EPSILON, '>=', '<')} floor {min_acc:.3f}",
        ),
        class_f1_floor_check(challenger, rules),
    ]


def class_f1_floor_check(challenger: EvaluationReport, rules: GateRules) -> GateCheck:
    """Every class in the evaluation set must reach the per-class F1 floor, whatever the champion scored on it: a
    class the champion already fails (or that poisoned labels wiped out) cannot hide behind a better macro-F1."""
    f1, support, floor = challenger.f1_by_label(), challenger.support_by_label(), rules.min_class_f1
    present = sorted((label for label in f1 if support.get(label)), key=f1.get)
    if not present:
        return GateCheck("min_class_f1", False, "no class has examples in the evaluation set")
    failing = [label for label in present if f1[label] < floor - EPSILON]
    if failing:
        listed = ", ".join(f"{label} {f1[label]:.3f}" for label in failing)
        return GateCheck("min_class_f1", False, f"per-class F1 below the floor {floor:.3f}: {listed}")
    return GateCheck("min_class_f1", True, f"lowest per-class F1 {f1[present[0]]:.3f} ({present[0]}) >= floor "
                                           f"{floor:.3f}")


def relative_checks(challenger: EvaluationReport, champion: EvaluationReport, rules: GateRules) -> list[GateCheck]:
    """Comparability first; the challenger-vs-champion checks only run on comparable reports."""
    comparability = [label_set_check(challenger, champion), eval_set_check(challenger, champion)]
    if not comparability[0].passed:
        return comparability[:1]
    if not comparability[1].passed:
        return comparability
    return comparability + [
        macro_f1_check(challenger, champion, rules),
        cost_check(challenger, champion, rules),
        class_f1_check(challenger, champion, rules),
    ]


def label_set_check(challenger: EvaluationReport, champion: EvaluationReport) -> GateCheck:
    """The challenger must know every label of the champion; labels it adds are new classes (compared nowhere,
    held to the floors)."""
    ours, theirs = set(challenger.label_names), set(champion.label_names)
    if ours == theirs:
        return GateCheck("label_set", True, f"challenger and champion share the same {len(ours)} labels")
    if ours > theirs:
        return GateCheck("label_set", True, f"challenger adds new labels {sorted(ours - theirs)}: compared with the "
                                            f"champion on the rows of its {len(theirs)} labels; the new labels are "
                                            "held to the floors")
    detail = (
        "label sets differ (only in challenger: "
        f"{sorted(ours - theirs) or 'none'}; only in champion: {sorted(theirs - ours) or 'none'}); "
        "models with different labels cannot be compared, so the challenger is not promoted automatically"
    )
    return GateCheck("label_set", False, detail)


def eval_set_check(challenger: EvaluationReport, champion: EvaluationReport) -> GateCheck:
    """Both reports must come from the same evaluation set (same size and per-class support)."""
    ours, theirs = ({label: n for label, n in report.support_by_label().items() if n}
                    for report in (challenger, champion))
    if ours == theirs:
        return GateCheck("eval_set", True, f"both evaluated on the same n={challenger.n} examples")
    differing = sorted(label for label in ours if ours[label] != theirs.get(label))
    detail = (
        f"champion was evaluated on n={champion.n}, challenger on n={challenger.n} with different per-class "
        f"support ({', '.join(differing)}); re-evaluate the champion on the challenger's evaluation set"
    )
    return GateCheck("eval_set", False, detail)


def macro_f1_check(challenger: EvaluationReport, champion: EvaluationReport, rules: GateRules) -> GateCheck:
    """Challenger macro-F1 >= champion macro-F1 - tolerance."""
    ours, theirs, tolerance = challenger.macro_f1, champion.macro_f1, rules.macro_f1_tolerance
    passed = ours >= theirs - tolerance - EPSILON
    detail = f"macro-F1 {ours:.3f} {sign_for(passed, '>=', '<')} champion {theirs:.3f} - {tolerance:.3f} tolerance"
    return GateCheck("macro_f1_vs_champion", passed, detail)


def cost_check(challenger: EvaluationReport, champion: EvaluationReport, rules: GateRules) -> GateCheck:
    """Challenger expected cost/1000 <= champion's + allowed increase, each as served (at its own abstention
    threshold when the owner prices a fallback)."""
    ours, theirs = challenger.served_cost_per_1000, champion.served_cost_per_1000
    allowed = rules.max_cost_increase
    passed = ours <= theirs + allowed + EPSILON
    served = " (each with the fallback below its own threshold)" if challenger.abstention is not None else ""
    detail = (
        f"expected cost/1000 {ours:.2f} {sign_for(passed, '<=', '>')} champion {theirs:.2f}"
        f" + {allowed:.2f} allowed increase{served}"
    )
    return GateCheck("cost_vs_champion", passed, detail)


def class_f1_check(challenger: EvaluationReport, champion: EvaluationReport, rules: GateRules) -> GateCheck:
    """No class F1 of the champion's may drop by more than the allowed amount (new classes have nothing to drop)."""
    ours, theirs, limit = challenger.f1_by_label(), champion.f1_by_label(), rules.max_class_f1_drop
    drops = {label: theirs[label] - ours[label] for label in ours if label in theirs}
    failing = sorted((label for label, drop in drops.items() if drop > limit + EPSILON), key=lambda x: -drops[x])
    if failing:
        listed = ", ".join(
            f"{label} {theirs[label]:.3f} -> {ours[label]:.3f} (-{drops[label]:.3f})" for label in failing
        )
        return GateCheck("class_f1_drop", False, f"per-class F1 dropped by more than {limit:.3f}: {listed}")
    worst = max(drops, key=lambda label: drops[label])
    if drops[worst] <= 0:
        return GateCheck("class_f1_drop", True, f"no class F1 dropped (allowed drop {limit:.3f})")
    detail = f"largest per-class F1 drop {drops[worst]:.3f} ({worst}) <= allowed {limit:.3f}"
    return GateCheck("class_f1_drop", True, detail)


def sign_for(passed: bool, when_passed: str, when_failed: str) -> str:
    """The comparison sign matching the outcome."""
    return when_passed if passed else when_failed
