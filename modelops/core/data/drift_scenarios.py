"""The generator's documented drift scenarios: what each changes in the data, and the drift it should cause."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftScenario:
    """A named, parameterised change of the data distribution."""

    name: str
    description: str
    expected_effect: str


DEMO_SCENARIO = "new_product"  # what `modelops demo` drifts with unless told otherwise
SCENARIOS: dict[str, DriftScenario] = {
    s.name: s for s in (
        DriftScenario(
            "new_product",
            "Tickets about a product line the baseline never mentions (eSIM travel/data plans, NovaTherm smart "
            "thermostat) spread over all existing intents; share of such tickets = severity.",
            "New vocabulary (esim, thermostat, roaming, qr, boiler, ...) appears; text-embedding drift rises with "
            "severity while the label mix stays the same; accuracy on these tickets may drop."),
        DriftScenario(
            "prior_shift",
            "The intent mix moves towards a delivery outage (shipping 16%->34%, complaint 6%->20%, refund up, "
            "billing/account/technical down); priors = (1 - severity) * baseline + severity * outage.",
            "Label / prediction distribution drift (e.g. chi-square or PSI on labels) grows with severity; "
            "per-ticket text stays in-distribution."),
        DriftScenario(
            "language_shift",
            "A share (= severity) of tickets is written in German, with its own templates per intent and "
            "German openings, closings, dates and amounts; labels unchanged.",
            "Non-ASCII characters and out-of-vocabulary German words appear; embedding drift rises; an "
            "English-trained model loses accuracy on the German share."),
        DriftScenario(
            "length_shift",
            "A share (= severity) of tickets gets extra context sentences and a pasted order history; the number "
            "of added sentences and history lines also grows with severity (texts capped at 1,900 characters).",
            "Text-length statistics (mean, p95) shift upwards; truncation at the model's max length becomes "
            "more frequent; intent words are diluted by boilerplate."),
    )
}
