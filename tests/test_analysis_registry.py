"""analysis/registry.py is the one list of analyses: every analysis package is in it, under
the name its routes and CLI command use. Static (no database): it reads the package tree."""

from __future__ import annotations

import pkgutil

import pytest

import geo_comuna.analysis
from geo_comuna.analysis.base import parse_params
from geo_comuna.analysis.registry import ANALYSES
from geo_comuna.errors import InvalidInput

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


@pytest.mark.parametrize("name", sorted(ANALYSES))
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_parameter_that_is_no_number_is_said_so(name: str, value: str) -> None:
    """Found from outside: max_minutes=nan was told "should be less than or equal to 600"."""
    params = ANALYSES[name].params
    numbers = [
        f for f, info in params.model_fields.items() if info.annotation in (float, float | None)
    ]
    assert numbers, name
    with pytest.raises(InvalidInput) as refused:
        parse_params(params, {numbers[0]: value})
    assert "finite number" in str(refused.value) and "número finito" in refused.value.reason.es
