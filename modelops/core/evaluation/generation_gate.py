"""The promotion gate for generative customisations: the generation policy's floors (valid output, exact match),
the classifier gate's rules on the decision field, and challenger vs champion on the same evaluation set."""

from __future__ import annotations

import logging

from modelops.core.evaluation.evaluation_policy import GateRules, GenerationPolicy
from modelops.core.evaluation.gate import (
    EPSILON,
    GateCheck,
    GateDecision,
    absolute_checks,
    class_f1_check,
    macro_f1_check,
    sign_for,
)
from modelops.core.evaluation.generation_evaluation import GenerationReport

log = logging.getLogger(__name__)


def decide_generation(challenger: GenerationReport, champion: GenerationReport | None, rules: GateRules,
                      policy: GenerationPolicy) -> GateDecision:
    """Apply the floors to the challenger and, when there is a champion, compare the two."""
    checks = generation_floors(challenger, rules, policy)
    if champion is not None:
        checks += generation_comparison(challenger, champion, rules, policy)
    decision = GateDecision(passed=all(check.passed for check in checks), checks=checks)
    log.info("generation gate %s: %s", "passed" if decision.passed else "failed",
             decision.reasons or "all checks passed")
    return decision


def generation_floors(report: GenerationReport, rules: GateRules, policy: GenerationPolicy) -> list[GateCheck]:
    """Evaluation size, valid output (json), exact match, and the classifier floors on the decision field."""
    n, size = report.n, rules.min_eval_size
    checks = [GateCheck("eval_size", n >= size, f"evaluation set n={n} {sign_for(n >= size, '>=', '<')} "
                                                f"minimum {size}"),
              _floor("min_exact_match", "exact match", report.exact_match, policy.min_exact_match)]
    if policy.output == "json":
        checks.append(_floor("min_valid_output", "valid JSON output", report.valid_output, policy.min_valid_output))
    if report.decision is not None:
        checks += _on_decision_field(absolute_checks(report.decision, rules)[1:], policy)
    return checks


def generation_comparison(challenger: GenerationReport, champion: GenerationReport, rules: GateRules,
                          policy: GenerationPolicy) -> list[GateCheck]:
    """Same evaluation set first; then exact match within tolerance, cost not above the allowed increase, and the
    decision field's macro-F1 and per-class rules."""
    if challenger.evaluation_set != champion.evaluation_set:
        return [GateCheck("eval_set", False, f"champion and challenger were evaluated on different sets (n="
                                             f"{champion.n} vs {challenger.n}); re-evaluate the champion on the "
                                             "challenger's set")]
    ours, theirs, tolerance = challenger.exact_match, champion.exact_match, policy.exact_match_tolerance
    exact = ours >= theirs - tolerance - EPSILON
    cost, their_cost, allowed = challenger.cost_per_1000, champion.cost_per_1000, rules.max_cost_increase
    cheaper = cost <= their_cost + allowed + EPSILON
    checks = [GateCheck("eval_set", True, f"both evaluated on the same n={challenger.n} prompts"),
              GateCheck("exact_match_vs_champion", exact, f"exact match {ours:.3f} "
                        f"{sign_for(exact, '>=', '<')} champion {theirs:.3f} - {tolerance:.3f} tolerance"),
              GateCheck("cost_vs_champion", cheaper, f"expected cost/1000 {cost:.2f} "
                        f"{sign_for(cheaper, '<=', '>')} champion {their_cost:.2f} + {allowed:.2f} allowed "
                        "increase")]
    if challenger.decision is not None and champion.decision is not None:
        checks += _on_decision_field([macro_f1_check(challenger.decision, champion.decision, rules),
                                      class_f1_check(challenger.decision, champion.decision, rules)], policy)
    return checks


def _on_decision_field(checks: list[GateCheck], policy: GenerationPolicy) -> list[GateCheck]:
    """The classifier gate's checks, named and described as checks of the decision field."""
    return [GateCheck(f"decision_{c.name}", c.passed, f"{policy.decision_field}: {c.detail}") for c in checks]


def _floor(name: str, what: str, value: float, floor: float) -> GateCheck:
    passed = value >= floor - EPSILON
    return GateCheck(name, passed, f"{what} {value:.3f} {sign_for(passed, '>=', '<')} floor {floor:.3f}")
