"""Every module's docstring examples run: a documented example that stops working fails here.

The modules are found by walking the five packages, so a new module is covered without editing
this file. A module that needs an optional extra (llama-cpp-python, matplotlib, ...) that is
not installed is skipped with the missing module named, never silently passed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ["sammo_core", "mutators", "search", "renderers", "benchmarks"]


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        names.append(package)
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_every_module() -> None:
    # 76 modules when this test was written; a broken walk would find a handful.
    assert len(MODULES) >= 70
    assert "sammo_core.components" in MODULES
    assert "sammo_core.runners.accounting" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:  # an optional extra that is not installed
        pytest.skip(f"{name} needs {exc.name}, which is not installed")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
