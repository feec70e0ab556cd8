"""The model that serves a registered version: the variant its evaluation chose (int8 or fp32 ONNX), falling back to
the next variant that passed and then to PyTorch when a file is missing, altered or unreadable (one log line each)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.core.serving.onnx_variants import PYTORCH, OnnxClassifier, VariantError, file_sha256
from modelops.core.serving.predictor import AdapterClassifier, Classifier, SharedBases
from modelops.core.tags import VersionTag

if TYPE_CHECKING:
    from modelops.core.registry.registry import ModelRegistry
    from modelops.core.training.base_model import BaseModelInfo

log = logging.getLogger(__name__)

NOT_EVALUATED = "no serving variant recorded for this version (evaluated before variants, or by another tool)"


@dataclass(frozen=True)
class ServedClassifier:
    """A loaded version: its classifier, the variant running it and why that one, and the version's tags."""

    version: str
    classifier: Classifier
    variant: str
    reason: str
    tags: dict[str, str]

    @property
    def release(self) -> Any:
        """What unloads the classifier from a shared base (None: garbage collection frees it)."""
        return getattr(self.classifier, "release", None)


def load_served_classifier(registry: ModelRegistry, version: str, base: BaseModelInfo, cache_dir: Path,
                           shared: SharedBases | None = None) -> ServedClassifier:
    """Load `version` as it should serve: its chosen ONNX variant (checked against its recorded sha256), else the
    next variant that passed, else PyTorch (merged into its own base copy, or on `shared` bases when given: then
    the variants are not used, all customisations share one base)."""
    tags = registry.version_info(version)["tags"]
    folder = Path(cache_dir) / f"{registry.model_name}-v{version}"
    adapter_dir = registry.download_adapter(version, folder)
    chosen, reason = tags.get(VersionTag.SERVING_VARIANT, PYTORCH), tags.get(VersionTag.SERVING_VARIANT_REASON,
                                                                              NOT_EVALUATED)
    failures: list[str] = []
    if shared is None:
        files: dict[str, dict[str, str]] = json.loads(tags.get(VersionTag.SERVING_VARIANT_FILES, "{}"))
        for variant, entry in files.items():
            try:
                path = registry.download_artifact(tags[VersionTag.SERVING_VARIANT_RUN_ID], entry["file"], folder)
                if file_sha256(path) != entry["sha256"]:
                    raise VariantError(f"{path} does not hold the evaluated graph (sha256 differs from the recorded "
                                       f"{entry['sha256'][:12]}...)")
                classifier = OnnxClassifier.from_adapter(base, adapter_dir, path)
            except Exception as error:
                log.error("%s v%s: serving variant %s cannot be loaded, trying the next one: %s",
                          registry.model_name, version, variant, error)
                failures.append(f"{variant}: {type(error).__name__}: {error}")
                continue
            return ServedClassifier(version, classifier, variant, reason if variant == chosen else
                                    _fallback(chosen, failures), tags)
    elif chosen != PYTORCH:
        failures.append(f"{chosen}: not used with a shared base (serving_runtime: shared-base)")
    classifier = shared.load(adapter_dir) if shared is not None else AdapterClassifier(base, adapter_dir)
    return ServedClassifier(version, classifier, PYTORCH, reason if chosen == PYTORCH else _fallback(chosen, failures),
                            tags)


def load_champion(registry: ModelRegistry, base: BaseModelInfo, cache_dir: Path,
                  shared: SharedBases | None = None) -> ServedClassifier:
    """Resolve `models:/<name>@champion` and load that version as it should serve (load_served_classifier)."""
    return load_served_classifier(registry, registry.champion_version(), base, cache_dir, shared)


def _fallback(chosen: str, failures: list[str]) -> str:
    return f"fallback from {chosen}: " + "; ".join(failures)
