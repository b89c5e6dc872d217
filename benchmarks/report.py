"""Benchmark reports: a markdown (and HTML) page and a score-against-budget plot.

:func:`write_report` reads what ``sammo-core bench run`` wrote into its output folder
(``results.json``, each task's ``trace.jsonl`` and rendered prompts) and writes

- ``report.md``: the per-task table (baseline vs optimized test score with 95% intervals,
  prompt tokens per input, calls, dollars, time), then per task the search settings, the
  winner's lineage, the paired test of winner against baseline on the test rows, its prompt
  for one test input and a unified diff from the baseline's. A multi-seed run (``--seeds``)
  shows the aggregate across seeds and a row per (task, seed) instead of the per-task table,
  and a section per (task, seed);
- ``report.html``: the same, self-contained apart from the plot;
- ``score_vs_budget.png``: the best validation score so far against candidates evaluated and
  against LLM calls, one line per task and seed (needs matplotlib, the ``plot`` extra; without
  it the report says so and has no plot). The calls axis counts every call the search spent: each
  candidate's own (its evaluation and the proposer calls that produced it), and a last point
  at the search's total for calls made after the last candidate.

>>> trace = [{"scores": {"acc": {"value": v}}, "spent": {"calls": 10}} for v in (0.5, 0.4, 0.7)]
>>> best_so_far(trace, "acc", total_calls=34)
[(1, 10, 0.5), (2, 20, 0.5), (3, 30, 0.7), (3, 34, 0.7)]
"""

from __future__ import annotations

import difflib
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.score_text import format_score
from sammo_core.errors import DataError
from sammo_core.run_files import damaged_file, inside, read_json, write_file

__all__ = [
    "PLOT_FILE",
    "best_so_far",
    "fence",
    "format_score",
    "load_trace",
    "plot_progress",
    "prompt_diff",
    "render_html",
    "render_markdown",
    "summary_rows",
    "write_report",
]

PLOT_FILE = "score_vs_budget.png"
_BACKTICKS = re.compile(r"`{3,}")


# -- small pieces ----------------------------------------------------------------------------


def prompt_diff(before: str, after: str) -> str:
    """A unified diff from the baseline prompt to the winner's (empty when equal).

    >>> print(prompt_diff("# Task\\nSay yes.\\n", "# Task\\nYes.\\n"))
    --- baseline
    +++ optimized
    @@ -1,2 +1,2 @@
     # Task
    -Say yes.
    +Yes.
    """
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "baseline", "optimized", lineterm=""
    )
    return "\n".join(lines)


def fence(text: str, info: str = "") -> str:
    """``text`` in a markdown code fence longer than any backtick run inside it.

    >>> print(fence("a ``` b", "text"))
    ````text
    a ``` b
    ````
    """
    longest = max((len(m.group()) for m in _BACKTICKS.finditer(text)), default=2)
    ticks = "`" * (longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def load_trace(path: Path) -> list[dict[str, Any]]:
    """The candidates of a search's ``trace.jsonl``, in evaluation order ([] if absent)."""
    if not path.is_file():
        return []
    try:
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path} is not a search trace (JSON lines): {exc}") from exc


def best_so_far(
    trace: Iterable[Mapping[str, Any]],
    objective: str,
    direction: str = "maximize",
    total_calls: int | None = None,
) -> list[tuple[int, int, float]]:
    """``(candidates evaluated, cumulative calls, best validation score so far)`` per candidate.

    A candidate's calls are its ``spent`` calls (older traces: ``calls``). When
    ``total_calls`` (the search's usage) exceeds their sum, a last point at it shows the calls
    spent after the last candidate.

    >>> best_so_far([{"scores": {"t": {"value": 9}}}, {"scores": {"t": {"value": 7}}}], "t",
    ...             "minimize")
    [(1, 0, 9.0), (2, 0, 7.0)]
    """
    points: list[tuple[int, int, float]] = []
    best: float | None = None
    calls = 0
    for n, row in enumerate(trace, start=1):
        value = float(row["scores"][objective]["value"])
        spent = row.get("spent")
        calls += int(spent["calls"] if isinstance(spent, Mapping) else row.get("calls", 0))
        better = best is None or (value > best if direction == "maximize" else value < best)
        best = value if better else best
        assert best is not None
        points.append((n, calls, best))
    if points and total_calls is not None and total_calls > calls:
        points.append((points[-1][0], total_calls, points[-1][2]))
    return points


# -- the plot --------------------------------------------------------------------------------


def plot_progress(out_dir: Path, results: Mapping[str, Any]) -> Path | None:
    """Draw ``score_vs_budget.png`` from each task's trace; ``None`` if there is nothing to
    draw or matplotlib is not installed (``pip install 'sammo-core[plot]'``)."""
    from benchmarks.seeds import flat_tasks

    series = []
    for name, task in flat_tasks(results).items():
        where = inside(out_dir, f"{task['run_dir']}/trace.jsonl", source=out_dir / "results.json")
        trace = load_trace(where)
        search_calls = task.get("usage", {}).get("search", {}).get("calls")
        points = best_so_far(
            trace, task["objective"], task.get("direction", "maximize"), search_calls
        )
        if points:
            series.append((name, task["objective"], points))
    if not series:
        return None
    try:
        # The object-oriented API with the Agg canvas: no pyplot, no global backend switch.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    by_candidates, by_calls = figure.subplots(1, 2, sharey=True)
    # One colour and one legend entry per task: its seeds share them, so a run of many tasks
    # and seeds keeps a legend that fits (one entry per line collapsed the axes at 7 x 10).
    colors: dict[str, str] = {}
    for name, objective, points in series:
        task = name.split(" (seed ", 1)[0]
        first = task not in colors
        color = colors.setdefault(task, f"C{len(colors) % 10}")
        label = f"{task} ({objective})" if first else None
        xs, calls, ys = zip(*points, strict=True)
        style = {"where": "post", "marker": "o", "markersize": 3, "color": color, "label": label}
        by_candidates.step(xs, ys, **style)
        by_calls.step(calls, ys, **style)
    by_candidates.set_xlabel("candidates evaluated")
    by_candidates.set_ylabel("best validation score so far")
    by_calls.set_xlabel("LLM calls (search incl. proposers, cumulative)")
    for axes in (by_candidates, by_calls):
        axes.grid(alpha=0.3)
    by_calls.legend(fontsize="small", loc="best")
    suite = results.get("suite", "")
    figure.suptitle(f"{suite} on {results.get('model', '?')}: score against budget")
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    return write_file(out_dir, PLOT_FILE, image.getvalue())


# -- tables ----------------------------------------------------------------------------------

SUMMARY_HEADER = (
    "task",
    "objective",
    "baseline (test)",
    "optimized (test)",
    "diff",
    "majority",
    "tokens/input",
    "calls",
    "$",
    "s",
)


def summary_rows(results: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per task of the summary table (see :data:`SUMMARY_HEADER`)."""
    from sammo_core.runners.pricing import cost_text

    rows: list[tuple[str, ...]] = []
    model = results.get("model")
    for name, task in results.get("tasks", {}).items():
        base, best = task["baseline"], task["optimized"]
        base_test, best_test = base.get("test"), best.get("test")
        diff = f"{best_test['value'] - base_test['value']:+.3f}" if base_test and best_test else "-"
        tokens = f"{base['prompt_tokens']:.0f} -> {best['prompt_tokens']:.0f}"
        if task.get("compression_ratio"):
            tokens += f" ({task['compression_ratio']:.2f}x)"
        rows.append(
            (
                name,
                task["objective"],
                format_score(base_test),
                format_score(best_test),
                diff,
                "-" if task.get("majority_rate") is None else f"{task['majority_rate']:.3f}",
                tokens,
                f"{task['calls']:,}",
                cost_text(task["usd"], model if isinstance(model, str) else None),
                f"{task['seconds']:.1f}",
            )
        )
    return rows


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["--:"] * (len(header) - 1)
    return "\n".join([line(header), "| " + " | ".join(align) + " |", *map(line, rows)])


def _read(out_dir: Path, relative: str | None) -> str:
    """The text of a file a record names, which must be inside ``out_dir`` (else DataError)."""
    if not relative:
        return ""
    path = inside(out_dir, relative, source=out_dir / "results.json")
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def _settings(task: Mapping[str, Any]) -> str:
    search = task["search"]
    params = ", ".join(f"{k}={v}" for k, v in search.get("params", {}).items())
    return (
        f"{search['strategy']} ({params}); operators: {search.get('operators', '-')}; "
        f"budget {search.get('budget')}, seed {search.get('seed')}; "
        f"{search['candidates']} candidates in {search['steps']} steps, "
        f"stopped on {search['stopped']}; answers read as {search.get('scoring', 'generated text')}"
    )


def _lineage(task: Mapping[str, Any]) -> list[str]:
    return [f"#{c['id']} {c['operator']}: {c['description']}" for c in task.get("lineage", [])]


def _paired(task: Mapping[str, Any]) -> str | None:
    """The paired test of winner against baseline on the test rows, in words (records
    written before it was kept have none)."""
    paired = task.get("paired")
    if not paired:
        return None
    text = (
        f"winner - baseline on the same {paired['n']} test rows {paired['diff']:+.3f} "
        f"[{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}] (paired bootstrap 95%"
        + ("; the interval excludes 0)" if paired["beats"] else ")")
    )
    if paired.get("mcnemar_p") is not None:
        text += (
            f"; exact McNemar p = {paired['mcnemar_p']:.3g} ({paired['winner_only']} rows only "
            f"the winner got right, {paired['baseline_only']} only the baseline)"
        )
    return text


def _tables(results: Mapping[str, Any]) -> list[tuple[str, Sequence[str], list[tuple[str, ...]]]]:
    """The report's tables with their headings: the summary of a one-seed run; the aggregate
    and the per-seed rows of a multi-seed run."""
    from benchmarks.seeds import (
        AGGREGATE_HEADER,
        PER_SEED_HEADER,
        aggregate_rows,
        is_multi_seed,
        per_seed_rows,
    )

    if not is_multi_seed(results):
        return [("", SUMMARY_HEADER, summary_rows(results))]
    seeds = ", ".join(str(entry["seed"]) for entry in results["seeds"])
    return [
        (
            f"Across seeds ({seeds}): the winner's test score and winner - baseline, mean ± "
            "sample standard deviation [min, max]; how many seeds' winners beat their baseline "
            "with a paired 95% interval that excludes 0",
            AGGREGATE_HEADER,
            aggregate_rows(results),
        ),
        (
            "Per seed: test scores with 95% intervals; winner - baseline on the same test rows "
            "with its paired bootstrap interval; exact McNemar p for 0/1 scores (rows only the "
            "winner / only the baseline got right)",
            PER_SEED_HEADER,
            per_seed_rows(results),
        ),
    ]


# -- markdown --------------------------------------------------------------------------------


def render_markdown(out_dir: Path, results: Mapping[str, Any], plot: Path | None) -> str:
    """The report as markdown."""
    from benchmarks.seeds import flat_tasks

    tasks = flat_tasks(results)
    parts = [
        f"# Benchmark: {results.get('suite')} on {results.get('model')}",
        "",
        f"{results.get('date', '')}; proposer: {results.get('proposer_model')}; "
        f"data: {results.get('data_dir')}. Scores are on the test split (touched only for the "
        "baseline and the winner), with 95% intervals (Wilson for accuracies and other shares of "
        "rows, bootstrap otherwise); the search selected on the "
        "validation split. Calls, dollars and time cover the search (within its budget, proposer "
        "calls included) and the final test report (outside the search budget); tokens/input is "
        "what each program costs per input, cache or not.",
        "",
    ]
    for heading, header, rows in _tables(results):
        parts += [heading, ""] if heading else []
        parts += [_markdown_table(header, rows), ""]
    errors: Mapping[str, str] = results.get("errors", {})
    if errors:
        parts += ["Failed tasks:", ""] + [f"- {k}: {v}" for k, v in errors.items()] + [""]
    if plot is not None:
        parts += [f"![best validation score against budget]({plot.name})", ""]
    else:
        parts += ["(No plot: matplotlib is missing, or no trace was written.)", ""]
    for name, task in tasks.items():
        base, best = task["baseline"], task["optimized"]
        parts += [f"## {name}", "", task.get("notes", ""), ""]
        parts.append(f"- search: {_settings(task)}")
        parts.append(
            f"- validation {task['objective']}: baseline {format_score(base.get('val'))}, "
            f"optimized {format_score(best.get('val'))}"
        )
        paired = _paired(task)
        if paired:
            parts.append(f"- paired test: {paired}")
        if task.get("compression_ratio"):
            parts.append(
                f"- compression: {base['prompt_tokens']:.0f} -> {best['prompt_tokens']:.0f} "
                f"prompt tokens per input ({task['compression_ratio']:.2f}x)"
            )
        parts.append(f"- winning program: `{task['winner_program']}`")
        lineage = _lineage(task)
        if len(lineage) > 1:
            parts += ["- how it was found:", *[f"  - {step}" for step in lineage]]
        winner_prompt = _read(out_dir, best.get("prompt_file"))
        diff = prompt_diff(_read(out_dir, base.get("prompt_file")), winner_prompt)
        parts += [
            "",
            "### Winning prompt (first test input)",
            "",
            fence(winner_prompt, "text"),
            "",
            "### Diff from the baseline prompt",
            "",
            fence(diff or "(no change: the baseline won)", "diff"),
            "",
        ]
    return "\n".join(parts)


# -- html ------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
    "td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}"
    "pre{background:#f6f8fa;padding:.75rem;overflow-x:auto;white-space:pre-wrap}"
    ".add{color:#116329}.del{color:#82071e}.hunk{color:#6e7781}img{max-width:100%}"
)


def _diff_html(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")
        if line.startswith(("+++", "---")):
            css = "hunk"
        text = html.escape(line)
        out.append(f'<span class="{css}">{text}</span>' if css else text)
    return "\n".join(out)


def render_html(out_dir: Path, results: Mapping[str, Any], plot: Path | None) -> str:
    """The report as one HTML page (the plot is linked, not embedded)."""
    from benchmarks.seeds import flat_tasks

    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(str(results.get('suite')))} benchmark</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>Benchmark: {e(str(results.get('suite')))} on {e(str(results.get('model')))}</h1>",
        f"<p>{e(str(results.get('date', '')))}. Test-split scores with 95% intervals (Wilson "
        "for accuracies, bootstrap otherwise); selection on the validation split.</p>",
    ]
    for heading, header, rows in _tables(results):
        head = "".join(f"<th>{e(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts += [f"<p>{e(heading)}</p>"] if heading else []
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    for task_name, message in results.get("errors", {}).items():
        parts.append(f"<p>Failed: {e(task_name)}: {e(message)}</p>")
    if plot is not None:
        parts.append(f"<p><img src='{e(plot.name)}' alt='best validation score vs budget'></p>")
    for name, task in flat_tasks(results).items():
        base, best = task["baseline"], task["optimized"]
        winner_prompt = _read(out_dir, best.get("prompt_file"))
        diff = prompt_diff(_read(out_dir, base.get("prompt_file")), winner_prompt)
        lineage = "".join(f"<li>{e(step)}</li>" for step in _lineage(task))
        parts += [
            f"<h2>{e(name)}</h2><p>{e(task.get('notes', ''))}</p>",
            f"<p>Search: {e(_settings(task))}. Winning program: "
            f"<code>{e(task['winner_program'])}</code></p>",
            f"<ol>{lineage}</ol>" if lineage else "",
            f"<p>Paired test: {e(paired)}</p>" if (paired := _paired(task)) else "",
            "<h3>Winning prompt (first test input)</h3>",
            f"<pre>{e(winner_prompt)}</pre>",
            "<h3>Diff from the baseline prompt</h3>",
            f"<pre>{_diff_html(diff) if diff else 'no change: the baseline won'}</pre>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: Path, results: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and (with matplotlib) the plot into ``out_dir``.

    ``results`` defaults to ``out_dir/results.json``. Returns the paths written by kind.
    """
    file = out_dir / "results.json"
    if results is None:
        results = read_json(file, what="bench results file")
    written: dict[str, Path] = {}
    with damaged_file(file, "a bench results file"):  # records read back, maybe edited
        if not isinstance(results, Mapping):
            raise TypeError(f"a JSON {type(results).__name__}, not an object")
        plot = plot_progress(out_dir, results)
        if plot is not None:
            written["plot"] = plot
        markdown = render_markdown(out_dir, results, plot)
        page = render_html(out_dir, results, plot)
    written["markdown"] = write_file(out_dir, "report.md", markdown)
    written["html"] = write_file(out_dir, "report.html", page)
    return written
