"""An exported soft-prompt program's manifest says what the soft prompt is and where its adapter
lies (no torch needed: the tensor is built from plain values)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sammo_core import GenerateText, MetaPrompt, Output
from sammo_core.errors import ConfigError
from sammo_core.export import Manifest, build_manifest, write_export
from sammo_core.soft import SoftPrompt, SoftTensor


def soft_program(trained: bool = True) -> Output:
    tensor = SoftTensor.from_values([[0.5, -1.0], [2.0, 0.25]]) if trained else None
    soft = SoftPrompt(n_tokens=2, init="Is it true?", tensor=tensor)
    return Output(GenerateText(MetaPrompt([soft, "Q: {{input}} A:"]), mode="completion"))


def manifest(program: Output, adapter: str | None) -> dict[str, object]:
    return build_manifest(
        program, model="hf:gemma3", scores={}, data_hash=None, budget_used={},
        created=datetime(2026, 1, 1, tzinfo=UTC), adapter=adapter,
    )  # fmt: skip


def test_the_manifest_names_the_soft_prompt_and_its_adapter_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    program = soft_program()
    data = manifest(program, "adapter")
    digest = SoftTensor.from_values([[0.5, -1.0], [2.0, 0.25]]).digest
    assert data["soft_prompt"] == {
        "n_tokens": 2, "init": "Is it true?", "sha256": digest, "adapter": "adapter"
    }  # fmt: skip
    _, path = write_export(program, tmp_path, "json", data)
    assert (
        Manifest.from_dict(__import__("json").loads(path.read_text())).soft_prompt
        == data["soft_prompt"]
    )


def test_a_program_without_soft_prompt_has_none_in_its_manifest() -> None:
    program = Output(GenerateText(MetaPrompt(["Q: {{input}} A:"])))
    assert manifest(program, None)["soft_prompt"] is None


def test_an_untrained_soft_prompt_cannot_be_exported() -> None:
    with pytest.raises(ConfigError, match=r"untrained SoftPrompt.*prompt-tuning"):
        manifest(soft_program(trained=False), None)


def test_a_malformed_soft_prompt_entry_is_refused() -> None:
    data = manifest(soft_program(), "adapter")
    data["soft_prompt"] = {"n_tokens": 2}
    with pytest.raises(ConfigError, match="soft_prompt must map exactly"):
        Manifest.from_dict(data)
