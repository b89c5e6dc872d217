"""The transformers model: loading errors, rank classification by label likelihood, soft prompts.

Fast tests run on the tiny in-memory Gemma 3 of :mod:`sammo_core.testing.tiny_hf` (skipped
without torch); the slow ones load the packaged Gemma 3 270M.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

import sammo_core.runners.hf as hf_module
from sammo_core import (
    DataTable,
    GenerateText,
    LLMRequest,
    MetaPrompt,
    Output,
    SoftPrompt,
    SoftTensor,
    Template,
    compile,
)
from sammo_core.errors import ConfigError
from sammo_core.prompt_files import render_request
from sammo_core.runners import Usage, build_runner
from sammo_core.runners.hf import (
    HFModel,
    TransformersRunner,
    label_logprobs,
    load_hf_model,
    request_prompt,
)
from sammo_core.testing.imports import loaded_by_importing


def test_importing_the_module_imports_no_torch() -> None:
    modules = ["sammo_core.runners.hf", "sammo_core.testing.tiny_hf"]
    assert loaded_by_importing(modules, ["torch", "transformers", "peft"]) == []


def test_an_unknown_spec_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'gemma4'.*gemma3, smollm2.*PATH\.gguf"):
        load_hf_model("gemma4")
    with pytest.raises(ConfigError, match=r"config\.json"):
        load_hf_model(str(tmp_path))  # a folder that is not a model


def _tiny(seed: int = 0) -> HFModel:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from sammo_core.testing.tiny_hf import tiny_hf_model

    return tiny_hf_model(seed)


def _naive(hf: HFModel, text: str, label: str, soft: object = None) -> float:
    """The label's log-likelihood from one full forward pass of the model over text + label."""
    torch = pytest.importorskip("torch")

    ids = hf.tokenizer(text)["input_ids"]
    label_ids = hf.tokenizer(label, add_special_tokens=False)["input_ids"]
    full = torch.tensor([ids + label_ids])
    with torch.no_grad():
        embeds = hf.model.get_input_embeddings()(full)
        if soft is not None:
            assert isinstance(soft, torch.Tensor)
            embeds = torch.cat((soft.unsqueeze(0), embeds), dim=1)
        logp = torch.log_softmax(hf.model(inputs_embeds=embeds).logits[0], dim=-1)
    offset = 0 if soft is None else soft.shape[0]
    return sum(float(logp[offset + len(ids) - 1 + k, token]) for k, token in enumerate(label_ids))


def _flat(table: list[list[float]]) -> list[float]:
    return [x for row in table for x in row]


TEXTS = ["is the sky blue answer:", "is it", "question: is it very red answer:", "a"]
LABELS = ["yes", "no", "very red", "not the sky"]  # single- and multi-token labels


def test_label_logprobs_are_the_models_label_likelihoods_in_any_batching() -> None:
    torch = pytest.importorskip("torch")

    hf = _tiny()
    with torch.no_grad():
        scores = label_logprobs(hf, TEXTS, LABELS, batch_size=3)
        one_by_one = label_logprobs(hf, TEXTS, LABELS, batch_size=1)
    assert scores.shape == (len(TEXTS), len(LABELS))
    expected = [[_naive(hf, t, label) for label in LABELS] for t in TEXTS]
    assert _flat(scores.tolist()) == pytest.approx(_flat(expected), abs=1e-5)
    assert _flat(one_by_one.tolist()) == pytest.approx(_flat(expected), abs=1e-5)


# peft reads a property transformers 5 deprecated; not ours to fix.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_a_soft_prompt_goes_before_bos_and_predicts_as_peft_does() -> None:
    torch = pytest.importorskip("torch")

    peft = pytest.importorskip("peft")
    hf = _tiny()
    soft = torch.randn(3, hf.hidden_size, generator=torch.Generator().manual_seed(1)) * 10
    with torch.no_grad():
        scores = label_logprobs(hf, TEXTS, LABELS, soft=soft)
        plain = label_logprobs(hf, TEXTS, LABELS)
    expected = [[_naive(hf, t, label, soft) for label in LABELS] for t in TEXTS]
    assert _flat(scores.tolist()) == pytest.approx(_flat(expected), abs=1e-5)
    assert not torch.allclose(scores, plain)  # the soft prompt changes the scores

    # PEFT's prompt tuning with the same embeddings gives the same label log-likelihoods.
    base = _tiny().model
    config = peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
    tuned = peft.get_peft_model(base, config)
    with torch.no_grad():
        tuned.prompt_encoder["default"].embedding.weight.copy_(soft)
        for i, text in enumerate(TEXTS):
            for j, label in enumerate(LABELS):
                ids = hf.tokenizer(text)["input_ids"]
                label_ids = hf.tokenizer(label, add_special_tokens=False)["input_ids"]
                logits = tuned(input_ids=torch.tensor([ids + label_ids])).logits[0]
                logp = torch.log_softmax(logits, dim=-1)
                peft_score = sum(
                    float(logp[3 + len(ids) - 1 + k, token]) for k, token in enumerate(label_ids)
                )
                assert float(scores[i, j]) == pytest.approx(peft_score, abs=1e-5)


def test_scores_carry_gradients_to_the_soft_prompt() -> None:
    torch = pytest.importorskip("torch")

    hf = _tiny()
    soft = torch.zeros(2, hf.hidden_size, requires_grad=True)
    scores = label_logprobs(hf, TEXTS[:2], LABELS[:2], soft=soft)
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor([0, 1]))
    loss.backward()
    assert soft.grad is not None and float(soft.grad.abs().sum()) > 0
    assert all(p.grad is None for p in hf.model.parameters())  # the model stays frozen


def test_bad_labels_and_soft_shapes_are_refused_by_name() -> None:
    torch = pytest.importorskip("torch")

    hf = _tiny()
    with pytest.raises(ConfigError, match="at least one label"):
        label_logprobs(hf, TEXTS, [])
    with pytest.raises(ConfigError, match="label '' has no tokens"):
        label_logprobs(hf, TEXTS, ["yes", ""])
    with pytest.raises(ConfigError, match=r"n_tokens x 16 tensor for tiny; got shape \(3, 8\)"):
        label_logprobs(hf, TEXTS, LABELS, soft=torch.zeros(3, 8))


# -- the runner ----------------------------------------------------------------------------


def _predict(
    spec: str, program: Output, rows: list[str], cache: Path
) -> tuple[list[object], Usage]:
    """The program's predictions for ``rows`` through ``build_runner(spec)`` with a persistent
    cache, and what that runner stack counted."""

    async def run() -> tuple[list[object], Usage]:
        stack = build_runner(spec, cache=cache)
        try:
            results = await compile(program).run(DataTable(rows), stack.runner)
            return results.predictions, stack.usage
        finally:
            await stack.aclose()

    return asyncio.run(run())


def _soft_program(tensor: SoftTensor, labels: list[str]) -> Output:
    soft = SoftPrompt(n_tokens=tensor.shape[0], tensor=tensor)
    prompt = MetaPrompt([soft, Template("{{ input }}")])
    return Output(GenerateText(prompt, mode="completion", labels=labels), parser="raw")


def test_the_runner_answers_by_label_likelihood_with_the_soft_prompt_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")

    hf = _tiny()
    monkeypatch.setitem(hf_module._MODELS, "tiny", hf)  # build_runner("hf:tiny") finds it
    values = torch.randn(3, hf.hidden_size, generator=torch.Generator().manual_seed(0)) * 10
    tensor = SoftTensor.from_torch(values)
    rows = ["yes yes", "is it red", "b"]
    labels = ["yes", "no", "maybe"]

    def run(program: Output) -> tuple[list[object], Usage]:
        return _predict("hf:tiny", program, rows, tmp_path / "cache.sqlite")

    program = _soft_program(tensor, labels)
    predictions, usage = run(program)
    # What rank classification predicts: the label most likely after the text, soft first.
    texts = [request_prompt(hf, render_request(program, row)) for row in rows]
    assert all(soft == tensor and "soft-prompt" not in text for text, soft in texts)
    with torch.no_grad():
        options = [" yes", " no", " maybe"]  # each label after a space
        scores = label_logprobs(hf, [text for text, _ in texts], options, soft=values)
    assert predictions == [labels[i] for i in scores.argmax(dim=1).tolist()]
    assert len(set(predictions)) > 1  # the test tells labels apart
    assert usage.calls == 3 and usage.cache_hits == 0
    text_tokens = sum(len(hf.tokenizer(text)["input_ids"]) for text, _ in texts)
    assert usage.prompt_tokens == text_tokens + 3 * 3  # the virtual tokens count
    # Every label's tokens are evaluated after each prompt: they are what the calls used.
    label_tokens = sum(len(hf.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in options)
    assert usage.completion_tokens == 3 * label_tokens

    # The same soft prompt again: every call is a cache hit; other values: none is.
    again, usage = run(_soft_program(tensor, labels))
    assert again == predictions and usage.cache_hits == 3 and usage.calls == 0
    other = SoftTensor.from_torch(values + 1)
    _, usage = run(_soft_program(other, labels))
    assert usage.cache_hits == 0 and usage.calls == 3


def test_the_soft_prompt_must_open_the_prompt() -> None:
    hf = _tiny()
    tensor = SoftTensor.from_values([[0.0] * hf.hidden_size])
    soft = SoftPrompt(n_tokens=1, tensor=tensor)
    late = Output(GenerateText(MetaPrompt(["is it", soft]), mode="completion"), parser="raw")
    request = render_request(late)
    with pytest.raises(ConfigError, match="must come first in the prompt"):
        request_prompt(hf, request)
    first = Output(GenerateText(MetaPrompt([soft, "is it"]), mode="completion"), parser="raw")
    assert request_prompt(hf, render_request(first)) == ("is it", tensor)


def test_the_runner_generates_greedily_up_to_a_stop_or_max_tokens() -> None:
    hf = _tiny()
    runner = TransformersRunner(hf)
    prompt = "is the sky blue answer:"
    request = LLMRequest.from_prompt(prompt, mode="completion", max_tokens=4)
    result = runner.generate_sync(request)
    # Greedy: each token is the model's most likely next one.
    torch = pytest.importorskip("torch")

    ids = hf.tokenizer(prompt)["input_ids"]
    with torch.no_grad():
        for _ in range(4):
            ids.append(int(hf.model(torch.tensor([ids])).logits[0, -1].argmax()))
    expected = hf.tokenizer.decode(ids[-4:], skip_special_tokens=True)
    assert result.text == expected and result.completion_tokens == 4
    assert result.prompt_tokens == 6 and result.model == "hf:tiny"
    first_word = expected.split()[0]
    stopped = runner.generate_sync(dataclasses.replace(request, stop=(first_word,)))
    assert stopped.text == ""  # cut before the stop sequence
    sampled = dataclasses.replace(request, temperature=1.0, seed=3)
    assert runner.generate_sync(sampled).text == runner.generate_sync(sampled).text


def test_an_unknown_hf_model_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown transformers model 'nope'.*gemma3"):
        build_runner("hf:nope")


def test_a_converted_model_folder_loads_the_same_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    hf = _tiny()
    folder = tmp_path / "converted"
    hf_module._keep_converted(hf.model, hf.tokenizer, folder)
    assert (folder / "model.safetensors").is_file()
    model, tokenizer = hf_module._load(folder)
    ids = torch.tensor([hf.tokenizer("is the sky blue")["input_ids"]])
    assert tokenizer("is the sky blue")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, hf.model(ids).logits)


# -- the real model (slow: loads Gemma 3 270M in transformers) -----------------------------


@pytest.fixture(scope="module")
def gemma3() -> HFModel:
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    try:
        return load_hf_model("gemma3")
    except ConfigError as exc:  # the local extra (the GGUF file) is not installed
        pytest.skip(str(exc))


@pytest.mark.slow
def test_gemma3_ranks_labels_by_likelihood(gemma3: HFModel) -> None:
    torch = pytest.importorskip("torch")

    hf = gemma3
    assert load_hf_model("gemma3") is hf  # cached per process
    assert not any(p.requires_grad for p in hf.model.parameters())
    texts = ["The capital of France is", "The capital of Italy is"]
    with torch.no_grad():
        scores = label_logprobs(hf, texts, [" Paris", " Rome", " Berlin"])
        assert scores.argmax(dim=1).tolist() == [0, 1]
        # The figure the issue asks for: seconds per rank-classification call, batch 1 and 8.
        for batch in (1, 8):
            rows = [f"Question {k}: is {k} an even number? Answer:" for k in range(batch)]
            label_logprobs(hf, rows, [" yes", " no"])  # warm
            cpu, wall = time.process_time(), time.perf_counter()
            label_logprobs(hf, rows, [" yes", " no"])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"gemma3 rank classification, batch {batch}: {cpu:.3f} s CPU, {wall:.3f} s wall")


# peft reads a property transformers 5 deprecated; not ours to fix.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
@pytest.mark.slow
def test_gemma3_with_a_soft_prompt_predicts_as_peft_and_caches_by_digest(
    gemma3: HFModel, tmp_path: Path
) -> None:
    import peft

    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    hf = gemma3
    # A soft prompt of realistic size: the embeddings of a task description.
    init = hf.tokenizer("Say whether the sentence is true.", add_special_tokens=False)
    with torch.no_grad():
        values = hf.model.get_input_embeddings()(torch.tensor(init["input_ids"][:6]))
    tensor = SoftTensor.from_torch(values)
    labels = ["yes", "no"]
    rows = ["Fire is cold.", "Water is wet.", "The sun is dark.", "Ice is frozen water."]
    prompt = MetaPrompt([SoftPrompt(n_tokens=6, tensor=tensor), Template("{{ input }} Answer:")])
    program = Output(GenerateText(prompt, mode="completion", labels=labels), parser="raw")

    def run() -> tuple[list[object], Usage]:
        return _predict("hf:gemma3", program, rows, tmp_path / "cache.sqlite")

    predictions, usage = run()
    assert usage.calls == 4 and usage.cache_hits == 0

    # PEFT's prompt tuning, the same embeddings copied in, on a second copy of the model.
    base = AutoModelForCausalLM.from_pretrained(
        hf_module._converted_folder(hf.path), dtype=torch.float32
    )
    config = peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=6)
    tuned = peft.get_peft_model(base, config).eval()
    expected = []
    with torch.no_grad():
        tuned.prompt_encoder["default"].embedding.weight.copy_(values)
        for row in rows:
            ids = hf.tokenizer(f"{row} Answer:")["input_ids"]
            best: tuple[float, str] | None = None
            for label in labels:
                label_ids = hf.tokenizer(f" {label}", add_special_tokens=False)["input_ids"]
                logits = tuned(input_ids=torch.tensor([ids + label_ids])).logits[0]
                logp = torch.log_softmax(logits, dim=-1)
                score = sum(float(logp[6 + len(ids) - 1 + k, t]) for k, t in enumerate(label_ids))
                best = max(best or (score, label), (score, label))
            assert best is not None
            expected.append(best[1])
    assert predictions == expected

    # The same request again is a cache hit, keyed by the soft prompt's digest.
    again, usage = run()
    assert again == predictions and usage.cache_hits == 4 and usage.calls == 0


def test_chat_requests_go_through_the_chat_template_after_the_soft_prompt() -> None:
    hf = _tiny()
    tensor = SoftTensor.from_values([[0.0] * hf.hidden_size])
    soft = SoftPrompt(n_tokens=1, tensor=tensor)
    program = Output(GenerateText(MetaPrompt([soft, "is it"]), system="be very"), parser="raw")
    request = render_request(program)
    # Without a template (Gemma 3 270M base), the messages' text as completion mode sends it;
    # the soft prompt goes before it all, system message included, as PEFT puts it.
    assert request_prompt(hf, request) == ("be very\n\nis it", tensor)
    hf.tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }} {% endfor %}"
        "{% if add_generation_prompt %}answer:{% endif %}"
    )
    text, found = request_prompt(hf, request)
    # The template's BOS is left to the tokenizer, which adds it once.
    assert (text, found) == ("system: be very user: is it answer:", tensor)
    assert hf.tokenizer(text)["input_ids"].count(hf.tokenizer.bos_token_id) == 1
