"""The benchmark's outputs: the printed table, JSON, Markdown and a PNG chart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._runners import DefinitionRecord, RunRecord

CONTEXT_WINDOW = 200_000


@dataclass
class Comparison:
    """One task run both ways."""

    kind: str
    size: int
    direct: RunRecord
    codeagent: RunRecord

    @property
    def task(self) -> str:
        return self.direct.task

    @property
    def reduction_pct(self) -> float:
        """How many fewer input tokens codeagent sent, in percent of direct (negative: it sent more)."""
        return reduction(self.direct.input_tokens, self.codeagent.input_tokens)


def reduction(direct: int, codeagent: int) -> float:
    return 100.0 * (1.0 - codeagent / direct) if direct else 0.0


def percent(value: float) -> str:
    """Two decimals, or as many more as it takes not to print a saving short of 100% as 100.00%."""
    decimals = 2
    while decimals < 6 and value < 100 and round(value, decimals) >= 100:
        decimals += 1
    return f"{value:.{decimals}f}%"


def change(reduction_pct: float) -> str:
    """A reduction as a signed change for the chart: −99.9% (fewer tokens) or +107% (more)."""
    value = -reduction_pct
    return ("+" if value > 0 else "−") + percent(abs(value))


def _size(chars: int) -> str:
    if chars >= 1_000_000:
        return f"{chars / 1_000_000:.1f}M"
    if chars >= 1_000:
        return f"{chars / 1_000:.1f}k"
    return str(chars)


TASK_HEADERS = (
    "task",
    "direct tokens",
    "codeagent tokens",
    "reduction",
    "turns (direct / codeagent)",
    "largest request (direct / codeagent)",
    "tool data returned (chars)",
    "tool data reaching the model (direct / codeagent)",
)
DEFINITION_HEADERS = ("tools", "direct: JSON schemas", "codeagent: prompt + stubs", "reduction", "stubs alone")


def task_rows(comparisons: list[Comparison]) -> list[tuple[str, ...]]:
    rows = []
    for c in comparisons:
        d, a = c.direct, c.codeagent
        rows.append(
            (
                c.task,
                f"{d.input_tokens:,}",
                f"{a.input_tokens:,}",
                percent(c.reduction_pct),
                f"{d.turns:,} / {a.turns}",
                f"{d.largest_request:,}{' *' if d.largest_request > CONTEXT_WINDOW else ''} / {a.largest_request:,}",
                _size(d.tool_data_chars),
                f"{_size(d.model_saw_chars)} / {_size(a.model_saw_chars)}",
            )
        )
    return rows


def definition_rows(definitions: list[DefinitionRecord]) -> list[tuple[str, ...]]:
    return [
        (
            f"{d.tools:,}",
            f"{d.direct_tokens:,}",
            f"{d.codeagent_tokens:,}",
            percent(reduction(d.direct_tokens, d.codeagent_tokens)),
            f"{d.stub_tokens:,}",
        )
        for d in definitions
    ]


def text_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows
    ]
    return "\n".join(out)


def markdown_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def notes(method: str, live: bool, comparisons: list[Comparison], definitions: list[DefinitionRecord]) -> list[str]:
    """What the figures mean, including where the saving is small."""
    out = [
        f"Input tokens are summed over every model request of a run, counted from the request bodies the Messages "
        f"API server received ({method}).",
        "Direct: each tool is an ordinary Anthropic tool; the scripted model makes one call per turn and every result "
        "enters the conversation as a tool_result (the JSON of the return value, uncapped); no system prompt. "
        "codeagent: the real Agent with a real sandbox kernel; the model writes one script and answers from what it "
        "printed.",
    ]
    if live:
        out.append("Live: counts come from Anthropic's token counting endpoint on each recorded request.")
    else:
        out.append(
            "Not run live here (no API key, no network): the figures are the offline estimate. With --live and "
            "ANTHROPIC_API_KEY set, each recorded request is counted by Anthropic's token counting endpoint instead; "
            "that path has not been run here."
        )
    over = [c for c in comparisons if c.direct.largest_request > CONTEXT_WINDOW]
    if over:
        out.append(
            "* The largest direct request exceeds a 200k-token context window: "
            + "; ".join(f"{c.task}: {c.direct.largest_request:,} tokens" for c in over)
            + ". A model with a 200k window could not finish that run without dropping or summarising results."
        )
    small = [c for c in comparisons if c.reduction_pct < 40]
    if small:
        out.append(
            "Small or negative saving: "
            + "; ".join(
                f"{c.task}: {percent(c.reduction_pct)} "
                f"({c.direct.input_tokens:,} direct vs {c.codeagent.input_tokens:,} codeagent tokens)"
                for c in small
            )
            + ". With little intermediate data, codeagent's longer instructions and the script text cost more than "
            "the tool results it keeps out of the context."
        )
    if any(c.kind == "analysis" for c in comparisons):
        out.append(
            "Data analysis: both approaches fetch the same rows with the same query (a median is not plain SQLite); "
            "a direct model able to write the whole aggregation in SQL would fetch a few rows instead."
        )
    if definitions:
        largest = definitions[-1]
        versus = (
            f"{largest.codeagent_tokens:,} vs {largest.direct_tokens:,} tokens of JSON schemas at {largest.tools:,} "
            f"tools ({percent(reduction(largest.direct_tokens, largest.codeagent_tokens))} fewer)"
        )
        if largest.codeagent_tokens < largest.stub_tokens:  # past tool_prompt_tokens: names only, search_tools
            out.append(
                f"Tool definitions: past `tool_prompt_tokens` of stubs the system prompt lists the tool sources and "
                f"names only and the script finds the rest with `search_tools`: {versus}; the stubs of all "
                f"{largest.tools:,} tools would be {largest.stub_tokens:,} tokens. These tokens are sent again with "
                f"every request of a run."
            )
        else:
            out.append(
                f"Tool definitions: codeagent shows every tool as a Python stub in its system prompt: {versus}; about "
                f"{largest.codeagent_tokens - largest.stub_tokens:,} of its tokens are fixed instructions and the "
                f"execute_python tool. These tokens are sent again with every request of a run."
            )
    return out


def to_json(comparisons: list[Comparison], definitions: list[DefinitionRecord], meta: dict[str, Any]) -> dict[str, Any]:
    def run(r: RunRecord) -> dict[str, Any]:
        return {
            "input_tokens": r.input_tokens,
            "turns": r.turns,
            "largest_request_tokens": r.largest_request,
            "request_tokens": r.request_tokens,
            "estimated_request_tokens": r.estimated_tokens,
            "tool_calls": r.tool_calls,
            "tool_data_chars": r.tool_data_chars,
            "tool_data_reaching_model_chars": r.model_saw_chars,
            "answer": r.answer,
            "duration_s": round(r.duration_s, 3),
        }

    return {
        **meta,
        "tasks": [
            {
                "task": c.task,
                "kind": c.kind,
                "size": c.size,
                "direct": run(c.direct),
                "codeagent": run(c.codeagent),
                "reduction_pct": round(c.reduction_pct, 2),
                "answers_correct": True,
            }
            for c in comparisons
        ],
        "tool_definitions": [
            {
                "tools": d.tools,
                "direct_tokens": d.direct_tokens,
                "codeagent_tokens": d.codeagent_tokens,
                "stub_tokens": d.stub_tokens,
                "reduction_pct": round(reduction(d.direct_tokens, d.codeagent_tokens), 2),
            }
            for d in definitions
        ],
    }


def to_markdown(
    comparisons: list[Comparison],
    definitions: list[DefinitionRecord],
    note_lines: list[str],
    targets: list[str],
    command: str,
) -> str:
    parts = [
        "# Context economy: codeagent vs direct tool calling",
        "",
        f"Generated by `{command}`.",
        "",
        "## Input tokens per task",
        "",
        markdown_table(TASK_HEADERS, task_rows(comparisons)),
        "",
    ]
    if definitions:
        parts += [
            "## Tool definitions shown to the model (tokens)",
            "",
            markdown_table(DEFINITION_HEADERS, definition_rows(definitions)),
            "",
        ]
    if targets:
        parts += ["## Targets", "", *[f"- {t}" for t in targets], ""]
    parts += ["## Notes", "", *[f"- {n}" for n in note_lines], ""]
    return "\n".join(parts)


def write_chart(path: Path, comparisons: list[Comparison], definitions: list[DefinitionRecord], method: str) -> None:
    """Tokens against task size, both approaches: expenses by members, definitions by tools, the other tasks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"direct": "#cf222e", "codeagent": "#0969da"}
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1.25, 1.1, 0.9]})
    expenses = sorted((c for c in comparisons if c.kind == "expenses"), key=lambda c: c.size)
    ax = axes[0]
    if expenses:
        xs = [c.size for c in expenses]
        for approach in ("direct", "codeagent"):
            ys = [getattr(c, approach).input_tokens for c in expenses]
            ax.plot(xs, ys, "o-", color=colours[approach], label=f"{approach}: total input tokens", lw=2)
            for x, y in zip(xs, ys, strict=True):
                ax.annotate(
                    f"{y:,}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(0, 8),
                    ha="center",
                    fontsize=8,
                    color=colours[approach],
                )
        ax.plot(
            xs,
            [c.direct.largest_request for c in expenses],
            "s--",
            color=colours["direct"],
            alpha=0.5,
            label="direct: largest single request",
        )
        ax.axhline(CONTEXT_WINDOW, color="#57606a", ls=":", lw=1)
        ax.text(xs[-1], CONTEXT_WINDOW / 1.5, "200k-token context window", fontsize=8, color="#57606a", ha="right")
        for c in expenses:
            ax.annotate(
                change(c.reduction_pct),
                (c.size, c.codeagent.input_tokens),
                textcoords="offset points",
                xytext=(0, -18),
                ha="center",
                fontsize=8,
                weight="bold",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.margins(x=0.1)
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.set_ylim(
            min(c.codeagent.input_tokens for c in expenses) / 5, max(c.direct.input_tokens for c in expenses) * 8
        )
        ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Expense agent: who went over budget?")
    ax.set_xlabel("team members (40 expenses each)")
    ax.set_ylabel("input tokens (all requests of the run)")

    ax = axes[1]
    if definitions:
        xs = [d.tools for d in definitions]
        ax.plot(
            xs,
            [d.direct_tokens for d in definitions],
            "o-",
            color=colours["direct"],
            lw=2,
            label="direct: JSON schemas",
        )
        ax.plot(
            xs,
            [d.codeagent_tokens for d in definitions],
            "o-",
            color=colours["codeagent"],
            lw=2,
            label="codeagent: instructions + stubs",
        )
        for d in definitions:
            ax.annotate(
                change(reduction(d.direct_tokens, d.codeagent_tokens)),
                (d.tools, d.codeagent_tokens),
                textcoords="offset points",
                xytext=(0, -18),
                ha="center",
                fontsize=8,
                weight="bold",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.margins(x=0.1)
        ax.set_ylim(min(d.codeagent_tokens for d in definitions) / 3, max(d.direct_tokens for d in definitions) * 3)
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Tool definitions the model is shown")
    ax.set_xlabel("tools")
    ax.set_ylabel("tokens")

    ax = axes[2]
    others = [c for c in comparisons if c.kind != "expenses"]
    if others:
        labels = [c.task.replace(", ", "\n") for c in others]
        pos = range(len(others))
        width = 0.38
        for k, approach in enumerate(("direct", "codeagent")):
            ys = [getattr(c, approach).input_tokens for c in others]
            bars = ax.bar([p + (k - 0.5) * width for p in pos], ys, width, color=colours[approach], label=approach)
            ax.bar_label(bars, [f"{y:,}" for y in ys], fontsize=8)
        for p, c in zip(pos, others, strict=True):
            ax.text(
                p,
                max(c.direct.input_tokens, c.codeagent.input_tokens) * 2.2,
                f"codeagent {change(c.reduction_pct)}",
                ha="center",
                fontsize=9,
                weight="bold",
            )
        ax.set_yscale("log")
        ax.set_ylim(top=max(c.direct.input_tokens for c in others) * 12)
        ax.set_xticks(list(pos), labels, fontsize=9)
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Other tasks")
    ax.set_ylabel("input tokens (all requests of the run)")

    fig.suptitle(f"codeagent vs direct tool calling: input tokens ({method})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out_dir: Path, data: dict[str, Any], markdown: str, chart: Any) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "context_economy.json", out_dir / "context_economy.md", out_dir / "context_economy.png"]
    paths[0].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths[1].write_text(markdown, encoding="utf-8")
    chart(paths[2])
    return paths
