"""Dagster-layer fixtures: settings in a temp dir, the customisation's Dagster objects and a temporary instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from modelops.defs.customisation import CustomisationDefs, customisation_defs
from modelops.defs.resources import resources_from_settings
from modelops.settings import Settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=tmp_path / "data")


@pytest.fixture()
def resources(settings: Settings) -> dict:
    return resources_from_settings(settings)


@pytest.fixture()
def customisation(settings: Settings) -> CustomisationDefs:
    """The assets, checks, jobs and sensor of the settings' (only) customisation."""
    return customisation_defs(settings.customisation)


@pytest.fixture()
def instance():
    with dg.instance_for_test() as instance:
        yield instance
