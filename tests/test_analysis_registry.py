"""analysis/registry.py is the one list of analyses: every analysis package is in it, under
the name its routes and CLI command use. Static (no database): it reads the package tree."""

from __future__ import annotations

import pkgutil

import geo_comuna.analysis
from geo_comuna.analysis.registry import ANALYSES

#: packages under analysis/ that are not analyses
NOT_ANALYSES = {"toolkit"}


def test_every_analysis_package_is_registered_once() -> None:
    packages = {
        f"geo_comuna.analysis.{m.name}"
        for m in pkgutil.iter_modules(geo_comuna.analysis.__path__)
        if m.ispkg and m.name not in NOT_ANALYSES
    }
    registered = [analysis.run.__module__ for analysis in ANALYSES.values()]
    assert sorted(registered) == sorted(packages)


def test_registry_keys_are_the_analyses_names() -> None:
    assert all(name == analysis.name for name, analysis in ANALYSES.items())
