"""Soft prompts as components: hashing, saving beside the program, placeholders, the extra."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from renderers import SECTION_FORMATS
from sammo_core import (
    ConfigError,
    DataTable,
    GenerateText,
    InputData,
    LLMRequest,
    MetaPrompt,
    Output,
    Section,
    SerializationError,
    SoftPrompt,
    SoftTensor,
    compile,
    content_hash,
    dumps,
    export_program,
    loads,
    render_prompt,
)
from sammo_core.loading import load_program
from sammo_core.prompt_files import render_request
from sammo_core.runners import LlamaCppRunner, OpenAIRunner, Runner, ScriptedRunner, cache_key
from sammo_core.serialization import load, save, soft_folder
from sammo_core.testing.imports import loaded_by_importing

TENSOR = SoftTensor.from_values([[0.5, -1.0, 0.25], [2.0, 0.0, -3.5]])


def program(tensor: SoftTensor | None = TENSOR, n_tokens: int = 2) -> Output:
    soft = SoftPrompt(n_tokens=n_tokens, init="Classify.", tensor=tensor, id="soft")
    return Output(
        GenerateText(MetaPrompt([soft, Section("Task", ["Is it blue?"]), InputData()])),
        parser="raw",
    )


def test_a_tensor_is_its_values_and_shape() -> None:
    same = SoftTensor(TENSOR.shape, TENSOR.data)
    assert same == TENSOR and hash(same) == hash(TENSOR) and same.digest == TENSOR.digest
    assert same.values() == [[0.5, -1.0, 0.25], [2.0, 0.0, -3.5]]
    # The same bytes read as another shape are another tensor.
    assert SoftTensor((3, 2), TENSOR.data) != TENSOR
    changed = SoftTensor.from_values([[0.5, -1.0, 0.25], [2.0, 0.0, -3.25]])
    assert changed != TENSOR and changed.digest != TENSOR.digest


def test_the_program_hash_covers_shape_and_learned_values_not_the_id() -> None:
    base = content_hash(program())
    assert content_hash(program()) == base
    assert content_hash(program().rebind({"child.prompt.children[0].id": "other"})) == base
    changed = SoftTensor.from_values([[0.5, -1.0, 0.25], [2.0, 0.0, -3.25]])
    assert content_hash(program(changed)) != base
    assert content_hash(program(None)) != base
    assert content_hash(program(None, n_tokens=3)) != content_hash(program(None))
    # A changed tensor shows as a change of the soft prompt node alone.
    changes = compile(program()).diff(compile(program(changed)))
    assert [(c.kind, c.path) for c in changes] == [("changed", "child.prompt.children[0]")]


def test_a_soft_prompt_checks_its_fields() -> None:
    with pytest.raises(ConfigError, match="n_tokens must be an integer >= 1; got 0"):
        SoftPrompt(n_tokens=0)
    with pytest.raises(ConfigError, match=r"n_tokens=3\) holds a 2x3 tensor"):
        SoftPrompt(n_tokens=3, tensor=TENSOR)
    with pytest.raises(ConfigError, match=r"a SoftTensor or None; got List .*from_torch"):
        SoftPrompt(n_tokens=2, tensor=[[1.0]])
    untrained = SoftPrompt(n_tokens=2)
    trained = untrained.with_tensor(TENSOR)
    assert untrained.tensor is None and trained.tensor == TENSOR  # the original is untouched


def test_a_soft_prompt_renders_as_a_placeholder_and_its_tensor_rides_with_the_request() -> None:
    text = render_prompt(program().child.prompt, "the sky")
    assert text.startswith(f"<soft-prompt n=2 sha={TENSOR.digest[:8]}>\n\n# Task\n\nIs it blue?")
    request = render_request(program(), "the sky")
    assert request.soft_prompts == (TENSOR,)
    assert request.to_dict()["soft_prompts"] == [TENSOR.digest]
    # The cache key follows the learned values, not only the placeholder text.
    changed = SoftTensor.from_values([[0.5, -1.0, 0.25], [2.0, 0.0, -3.25]])
    other = dataclasses.replace(request, soft_prompts=(changed,))
    assert cache_key("m", other) != cache_key("m", request)
    assert "soft_prompts" not in LLMRequest.from_prompt("x").to_dict()  # old keys unchanged
    # A nested call's soft prompt is its own, not the outer call's.
    inner = GenerateText(
        MetaPrompt([SoftPrompt(n_tokens=1, tensor=SoftTensor.from_values([[1.0]]))])
    )
    outer = GenerateText(MetaPrompt([program().child.prompt.children[0], inner]))
    assert outer._soft_tensors() == (TENSOR,)
    assert str(program(None)).count("SoftPrompt(n_tokens=2, init='Classify.', untrained)") == 1
    assert export_program(program(), "markdown").startswith(
        f"<soft-prompt n=2 sha={TENSOR.digest[:8]}>"
    )


def test_an_untrained_soft_prompt_cannot_be_called() -> None:
    with pytest.raises(ConfigError, match=r"#soft SoftPrompt.*no learned values yet: train it"):
        render_request(program(None), "the sky")


@pytest.mark.parametrize("kind", ["scripted", "llama.cpp", "openai"])
def test_text_runners_refuse_a_soft_prompt_and_name_the_runner_that_can(kind: str) -> None:
    request = render_request(program(), "the sky")
    runner: Runner
    if kind == "scripted":
        runner = ScriptedRunner(default="yes")
    elif kind == "openai":
        runner = OpenAIRunner("gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="x")
    else:
        runner = LlamaCppRunner.__new__(LlamaCppRunner)  # no model file needed to refuse
        runner.model = "local:gemma3"
    with pytest.raises(ConfigError, match=r"cannot run soft prompts .*--model hf:gemma3"):
        asyncio.run(runner.generate(request))
    # A run stops at once: every call would fail alike.
    with pytest.raises(ConfigError, match=r"'scripted' cannot run soft prompts"):
        compile(program()).run_sync(DataTable(["the sky"]), ScriptedRunner(default="yes"))


def test_save_writes_the_tensor_beside_the_json_and_load_reads_it_back(tmp_path: Path) -> None:
    path = save(program(), tmp_path / "best.json")
    tensor_file = tmp_path / "best.soft" / f"{TENSOR.digest}.safetensors"
    assert soft_folder(path) == tmp_path / "best.soft"
    assert [p.name for p in (tmp_path / "best.soft").iterdir()] == [tensor_file.name]
    text = path.read_text()
    assert TENSOR.digest in text and '"data"' not in text  # referenced, not inlined
    loaded = load(path)
    assert loaded == program()
    assert load_program(path).program == program()  # as `sammo-core run best.json` reads it
    assert content_hash(loaded) == content_hash(program())
    # Without the folder, the JSON alone says where its tensor is.
    with pytest.raises(SerializationError, match=r"stored beside the program file.*\.soft"):
        loads(path.read_bytes())


def test_a_tampered_or_missing_tensor_file_is_refused(tmp_path: Path) -> None:
    path = save(program(), tmp_path / "p.json")
    tensor_file = soft_folder(path) / f"{TENSOR.digest}.safetensors"
    blob = bytearray(tensor_file.read_bytes())
    blob[-1] ^= 0x01  # one bit of one value
    tensor_file.write_bytes(bytes(blob))
    with pytest.raises(SerializationError, match=f"soft tensor {TENSOR.digest[:8]} does not match"):
        load(path)
    tensor_file.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(SerializationError, match="not a soft tensor safetensors file"):
        load(path)
    tensor_file.unlink()
    with pytest.raises(SerializationError, match=r"is missing: expected .*p\.soft"):
        load(path)


def test_dumps_inlines_the_tensor_and_checks_it_on_loads() -> None:
    text = dumps(program())
    assert loads(text) == program()
    data = orjson.loads(text)
    soft = data["program"]["child"]["prompt"]["children"][0]["tensor"]
    soft["data"] = soft["data"][:-4] + "AAAA"  # other bytes than the digest says
    with pytest.raises(SerializationError, match="does not match its digest"):
        loads(orjson.dumps(data))


def test_the_file_reads_in_the_safetensors_library_and_torch() -> None:
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    loaded = st.load(TENSOR.to_safetensors())
    assert list(loaded) == ["soft_prompt"]
    assert loaded["soft_prompt"].tolist() == TENSOR.values()
    assert SoftTensor.from_torch(TENSOR.to_torch()) == TENSOR
    values = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(SoftTensor.from_safetensors(st.save({"w": values})).to_torch(), values)


def test_importing_sammo_core_imports_no_torch() -> None:
    modules = ["sammo_core", "sammo_core.soft", "sammo_core.serialization", "sammo_core.runners"]
    heavy = ["torch", "transformers", "peft", "safetensors", "gguf"]
    assert loaded_by_importing(modules, heavy) == []


def test_without_the_extra_the_error_names_it() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from sammo_core.soft import SoftTensor, require_soft\n"
        "for call in (require_soft, SoftTensor.from_values([[1.0]]).to_torch):\n"
        "    try:\n"
        "        call()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, str(exc).split(' (')[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = "ConfigError soft prompts need the [soft] extra: pip install -e '.[soft]'"
    assert out.stdout.splitlines() == [line, line]


@pytest.mark.parametrize("section_format", sorted(SECTION_FORMATS))
def test_a_leading_soft_prompt_stays_ahead_of_the_text_in_every_section_format(
    section_format: str,
) -> None:
    def make(soft: bool) -> Output:
        children: list[Any] = [Section("Task", ["Is it blue?"]), InputData()]
        if soft:
            children.insert(0, SoftPrompt(n_tokens=2, tensor=TENSOR))
        prompt = MetaPrompt(children, section_format=section_format)
        return Output(GenerateText(prompt, mode="completion"), parser="raw")

    rows = DataTable(["the sky", "the sea"])
    recorders = [ScriptedRunner(default="yes", soft_prompts=True) for _ in range(2)]
    for recorder, soft in zip(recorders, (False, True), strict=True):
        compile(make(soft)).run_sync(rows, recorder)  # the planned path, row after row
    mark = f"<soft-prompt n=2 sha={TENSOR.digest[:8]}>\n\n"
    assert recorders[1].prompts == [mark + text for text in recorders[0].prompts]
    assert all(r.soft_prompts == (TENSOR,) for r in recorders[1].requests)
