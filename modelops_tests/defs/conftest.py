"""Dagster-layer fixtures: settings in a temp dir and a temporary Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from modelops.defs.resources import resources_from_settings
from modelops.settings import Settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=tmp_path / "data")


@pytest.fixture()
def resources(settings: Settings) -> dict:
    return resources_from_settings(settings)


@pytest.fixture()
def instance():
    with dg.instance_for_test() as instance:
        yield instance
