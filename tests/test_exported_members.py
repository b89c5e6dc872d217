"""Each package's public face: a sorted __all__ of names that exist, and a light import."""

from __future__ import annotations

import importlib

import pytest

from sammo_core.testing.imports import loaded_by_importing

PACKAGES = ["sammo_core", "sammo_core.runners", "renderers", "mutators", "search"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    # ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then lowercase names
    assert list(exported) == sorted(exported, key=lambda n: (not n.isupper(), n[0].islower(), n)), (
        "keep __all__ sorted"
    )
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item!r}"


def test_importing_the_packages_loads_no_llm_client_model_or_plot_library() -> None:
    modules = ["sammo_core", "sammo_core.runners", "mutators", "search", "renderers"]
    heavy = ["openai", "httpx", "llama_cpp", "matplotlib", "networkx", "psycopg", "ray"]
    assert loaded_by_importing(modules, heavy) == []
