"""DSPy 3.4's side of :mod:`benchmarks.harness.peer_compare`, run by the Python of its virtualenv.

It imports only ``dspy`` and the standard library. It reads one JSON job on stdin (a task's
train / validation / test rows, the server, the budget; see ``peer_compare.peer_job``), searches
with ``BootstrapFewShotWithRandomSearch`` on the validation rows, answers the test rows with the
start (zero-shot) and the winner, and prints one line ``PEER_RESULT {...}`` on stdout.

The model is ``dspy.LM("openai/<model>", model_type="text", temperature=0, cache=False)``:
DSPy's text mode sends the adapter's messages joined by blank lines and ending with
``BEGIN RESPONSE:`` to ``/v1/completions``, with the job's stop sequences and token cap.

* **Adapter.** DSPy's ``ChatAdapter`` asks for ``[[ ## answer ## ]]`` fields, which a small base
  model may not write. A probe first answers the validation rows with 8 labeled demos (which
  show the format) through ``ChatAdapter`` (JSON fallback off, so one call per row); when more
  than half the replies give no label (DSPy could not parse them, or the parsed answer is not
  one of the task's labels: Gemma writes the field markers and echoes the question into
  them), the search uses :class:`PlainAdapter` instead: the
  instruction, then ``Input: ...`` / ``BEGIN RESPONSE: ...`` demos, the answer being the first
  line of the reply. The probe's calls are counted in ``calls``, not in ``candidates``.
* **Search.** Random search over demo sets: ``max_bootstrapped_demos=0`` (no teacher calls),
  ``max_labeled_demos=8``; DSPy's 3 baselines (zero-shot, 8 sampled labeled demos, the first 8)
  count in the budget, so ``num_candidate_programs = budget - 3``. DSPy draws a demo count from
  ``randint(min_num_samples, max_bootstrapped_demos)``, which fails for 0 bootstrapped demos
  unless ``min_num_samples`` is 0 too, so the side sets it so.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

RESULT_PREFIX = "PEER_RESULT "
BASELINES = 3  # zero-shot, labeled few-shot, unshuffled few-shot
PROBE_LIMIT = 0.5  # above this share of replies without a label, ChatAdapter is given up
#: litellm would fetch its model price list over the network at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _key(text: Any) -> str:
    """An answer as the search's metric compares it: first line, trimmed, casefolded."""
    first = next((ln for ln in str(text or "").splitlines() if ln.strip()), "")
    return first.strip().strip("'\"`*_").rstrip(".,;:!?").strip().casefold()


def _counting_lm() -> Any:
    """``dspy.LM`` counting the requests it sends, on the class (DSPy copies LMs)."""
    import threading

    import dspy  # type: ignore[import-not-found]

    lock = threading.Lock()

    class CountingLM(dspy.LM):  # type: ignore[misc]
        calls = 0

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            with lock:
                CountingLM.calls += 1
            return super().forward(*args, **kwargs)

        async def aforward(self, *args: Any, **kwargs: Any) -> Any:
            with lock:
                CountingLM.calls += 1
            return await super().aforward(*args, **kwargs)

    return CountingLM


def _plain_adapter() -> Any:
    import dspy

    class PlainAdapter(dspy.Adapter):  # type: ignore[misc]
        """Few-shot text for a base model: instruction, ``Input:`` / answer pairs, the input."""

        def format(
            self, signature: Any, demos: list[dict[str, Any]], inputs: dict[str, Any]
        ) -> Any:
            parts = [signature.instructions]
            for demo in demos:
                parts.append(f"Input: {demo['question']}\n\nBEGIN RESPONSE: {demo['answer']}")
            parts.append(f"Input: {inputs['question']}")
            return [{"role": "user", "content": "\n\n".join(parts)}]

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            line = next((ln for ln in completion.splitlines() if ln.strip()), "")
            return {"answer": line.strip()}

    return PlainAdapter()


def _prompt(adapter: Any, program: Any, question: str) -> str:
    """The text DSPy's text mode sends for ``question`` (messages joined, ``BEGIN RESPONSE:``)."""
    predictor = program.predictors()[0]
    demos = [dict(d) for d in predictor.demos]
    messages = adapter.format(predictor.signature, demos, {"question": question})
    return "\n\n".join([m["content"] for m in messages] + ["BEGIN RESPONSE:"])


def _answer_all(program: Any, questions: list[str], threads: int) -> tuple[list[str], int]:
    """The program's answers (``""`` where DSPy raised, e.g. a parse failure); failures."""

    def one(question: str) -> str | None:
        try:
            return str(program(question=question).answer or "")
        except Exception:  # DSPy raises AdapterParseError (and others) per row
            return None

    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(one, questions))
    return [a or "" for a in answers], sum(a is None for a in answers)


def _run(job: dict[str, Any]) -> dict[str, Any]:
    import dspy
    from dspy.teleprompt import (  # type: ignore[import-not-found]
        BootstrapFewShotWithRandomSearch,
        LabeledFewShot,
    )

    lm = _counting_lm()(
        f"openai/{job['model']}",
        api_base=job["base_url"],
        api_key="unused",
        model_type="text",
        temperature=0.0,
        max_tokens=job["max_tokens"],
        stop=job["stop"],
        cache=False,
        num_retries=2,
    )
    threads = job["concurrency"]
    signature = dspy.Signature("question -> answer", job["instructions"])
    student = dspy.Predict(signature)
    train = [dspy.Example(question=q, answer=a).with_inputs("question") for q, a in job["train"]]
    val = [dspy.Example(question=q, answer=a).with_inputs("question") for q, a in job["val"]]
    started = time.perf_counter()

    # The probe: can this model answer in ChatAdapter's format, shown 8 labeled demos?
    # (dspy.configure, not dspy.context: the latter does not reach _answer_all's threads.)
    chat = dspy.ChatAdapter(use_json_adapter_fallback=False)
    dspy.configure(lm=lm, adapter=chat)
    shown = LabeledFewShot(k=job["max_examples"]).compile(student, trainset=train)
    answers, unparsed = _answer_all(shown, [q for q, _ in job["val"]], threads)
    sample = str((lm.history[-1].get("outputs") or [""])[0]) if lm.history else ""
    labels = {_key(answer) for _, answer in job["train"]}
    unusable = sum(_key(answer) not in labels for answer in answers)
    share = unusable / max(1, len(job["val"]))
    adapter = chat if share <= PROBE_LIMIT else _plain_adapter()
    adapter_note = (
        f"ChatAdapter probe (8 demos, {len(job['val'])} val rows, {type(lm).calls} calls, "
        f"counted in calls): {unparsed} unparsed, {share:.0%} without a label "
        f"(a reply: {sample[:80]!r}); "
        + ("searched with ChatAdapter" if adapter is chat else "searched with a plain adapter")
    )

    def metric(example: Any, prediction: Any, trace: Any = None) -> bool:
        return _key(prediction.answer) == _key(example.answer)

    budget = job["budget"]
    optimizer = BootstrapFewShotWithRandomSearch(
        metric=metric,
        max_bootstrapped_demos=0,
        max_labeled_demos=job["max_examples"],
        num_candidate_programs=max(0, budget - BASELINES),
        num_threads=threads,
        max_errors=10**9,  # a reply that does not parse scores 0; it must not stop the search
    )
    optimizer.min_num_samples = 0  # see the module docstring
    restrict = None if budget >= BASELINES else list(range(-BASELINES, budget - BASELINES))
    dspy.configure(lm=lm, adapter=adapter)
    best = optimizer.compile(student, trainset=train, valset=val, restrict=restrict)
    questions = [q for q, _ in job["test"]]
    start = student.reset_copy()
    start_replies, start_failed = _answer_all(start, questions, threads)
    best_replies, best_failed = _answer_all(best, questions, threads)
    scores = {c["seed"]: c["score"] for c in best.candidate_programs}
    return {
        "method": "BootstrapFewShotWithRandomSearch, 0 bootstrapped + up to 8 labeled demos, "
        + ("ChatAdapter" if adapter is chat else "plain adapter"),
        "candidates": len(best.candidate_programs),
        "calls": type(lm).calls,
        "seconds": time.perf_counter() - started,
        "start_val": scores.get(-BASELINES, 0.0) / 100.0,
        "best_val": best.candidate_programs[0]["score"] / 100.0,
        "note": f"{adapter_note}; test rows unparsed: start {start_failed}, best {best_failed}; "
        f"winner shows {len(best.predictors()[0].demos)} demos",
        "start_test_replies": start_replies,
        "best_test_replies": best_replies,
        "start_prompt": _prompt(adapter, start, questions[0]),
        "best_prompt": _prompt(adapter, best, questions[0]),
    }


def main() -> int:
    """Read a job on stdin, run it, print ``PEER_RESULT {...}``."""
    job = json.loads(sys.stdin.read())
    from importlib.metadata import version

    with contextlib.redirect_stdout(sys.stderr):  # progress bars must not mix with the result
        result = _run(job)
    result["version"] = version("dspy")
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
