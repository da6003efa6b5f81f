"""The static rendering of a finished call: text/plain and inline-styled HTML built from <details>.

No <style>, no <script>, no external resources: the bundle survives sanitising in untrusted notebooks,
GitHub, nbconvert and a closed kernel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from codeagent.agent.pricing import estimate_cost, format_cost
from codeagent.agent.trace import CodeAgentResult, ScriptRun
from codeagent.sandbox.host.output import strip_controls
from codeagent.tools.records import ToolCallRecord
from codeagent.widgets.sanitize import escape, image_text, link_note, safe_text, sanitize_answer_html

SECTIONS = ("code", "calls", "output", "steps", "usage")

BOX = "border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:4px 0;font-family:sans-serif"
SUMMARY = "cursor:pointer;font-weight:600;color:#57606a"
PRE = (
    "background:#f6f8fa;padding:8px;border-radius:4px;overflow-x:auto;font-size:12px;"
    "white-space:pre-wrap;word-break:break-word;margin:4px 0"
)
TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
CELL = "border:1px solid #d0d7de;padding:2px 6px;text-align:left;vertical-align:top"
UNSANDBOXED_WARNING = "unsandboxed: generated code runs with no lockdown layer, with your user's rights."
ANSWER_SOURCES = {
    "repeated_script": "The answer is the script's printed output (the model re-sent the script instead of answering).",
    "answer_from_output": "The answer is the script's printed output (--answer-from-output).",
}
STATUS_COLOURS = {
    "done": "#1a7f37",
    "max_steps": "#9a6700",
    "budget": "#9a6700",
    "error": "#cf222e",
    "interrupted": "#9a6700",
    "running": "#0969da",
}


def _esc(text: Any) -> str:
    return escape(text)


def markdown_html(text: str) -> str:
    """Markdown → HTML that loads nothing (model text is untrusted): raw HTML off, images shown as their alt
    text and URL, links marked with where they go, then the answer's allow-list (``sanitize_answer_html``)."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return f"<div style='white-space:pre-wrap'>{_esc(text)}</div>"
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        alt = renderer.renderInlineAsText(token.children or [], options, env)
        return f"<code>{_esc(image_text(str(token.attrGet('src') or ''), alt))}</code>"

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        env.setdefault("links", []).append(str(tokens[idx].attrGet("href") or ""))
        return str(renderer.renderToken(tokens, idx, options, env))

    def link_close(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        href = env.get("links", [""]).pop() if env.get("links") else ""
        return f"</a><small>{_esc(link_note(href))}</small>"

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    md.add_render_rule("link_close", link_close)
    return sanitize_answer_html(md.render(strip_controls(text), {}))


def code_html(code: str) -> str:
    """Python highlighted with inline styles (Pygments ``noclasses``)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f"<pre style='{PRE}'>{_esc(code)}</pre>"
    formatter = HtmlFormatter(noclasses=True, nobackground=True, style="default")
    inner = highlight(code, PythonLexer(), formatter)
    return f"<div style='{PRE}'>{inner}</div>"


def _details(title: str, body: str, open_: bool) -> str:
    return (
        f"<details{' open' if open_ else ''} style='margin:4px 0'>"
        f"<summary style='{SUMMARY}'>{title}</summary>{body}</details>"
    )


def _size(chars: int) -> str:
    if chars >= 1_000_000:
        return f"{chars / 1_000_000:.1f}M chars"
    if chars >= 1_000:
        return f"{chars / 1_000:.1f}k chars"
    return f"{chars} chars"


def _calls_table(calls: Iterable[ToolCallRecord], limit: int = 200) -> str:
    calls = list(calls)
    rows = []
    for i, c in enumerate(calls[:limit], 1):
        args = json.dumps(c.arguments, ensure_ascii=False)
        outcome = (
            f"<span style='color:#cf222e'>{_esc(c.error)}</span>"
            if c.error
            else _esc(c.result_preview[:160] + ("…" if len(c.result_preview) > 160 else ""))
        )
        if c.approval:
            outcome += f"<div style='color:#57606a'>{_esc(c.approval)}</div>"
        rows.append(
            f"<tr><td style='{CELL}'>{i}</td><td style='{CELL}'><code>{_esc(c.name)}</code></td>"
            f"<td style='{CELL}'><code>{_esc(args[:200])}</code></td><td style='{CELL}'>{outcome}</td>"
            f"<td style='{CELL}'>{_size(c.result_chars)}</td><td style='{CELL}'>{c.duration_s * 1000:.1f} ms</td></tr>"
        )
    more = (
        f"<tr><td style='{CELL}' colspan='6'>… {len(calls) - limit} more calls</td></tr>" if len(calls) > limit else ""
    )
    head = "".join(f"<th style='{CELL}'>{h}</th>" for h in ("#", "tool", "arguments", "result", "size", "time"))
    return f"<table style='{TABLE}'><tr>{head}</tr>{''.join(rows)}{more}</table>"


def _script_title(run: ScriptRun, n: int, escape: bool = True) -> str:
    mark = "✓" if run.status == "ok" else "✗"
    name = (_esc(run.error_name) if escape else run.error_name) if run.error_name else ""
    err = f" — {name}" if name else ""
    if run.status == "denied":
        return f"✗ Script {n} (step {run.step}): {_esc(run.approval)}"
    return f"{mark} Script {n} (step {run.step}): {len(run.tool_calls)} tool calls, {run.duration_s:.2f} s{err}"


def _unsandboxed(result: CodeAgentResult) -> bool:
    """No lockdown layer (unsandboxed mode applies resource limits only)."""
    return bool(result.scripts) and set(result.sandbox_layers) <= {"rlimits"}


def render_html(result: CodeAgentResult, open_sections: Iterable[str] = ()) -> str:
    """The final view: answer visible, everything else folded unless named in ``open_sections``."""
    opened = set(open_sections)
    colour = STATUS_COLOURS.get(result.status, "#57606a")
    calls = result.tool_calls
    header = (
        f"<div style='font-size:12px;color:#57606a'>codeagent · <span style='color:{colour}'>"
        f"{_esc(result.status)}</span> · {len(result.scripts)} script(s) · {len(calls)} tool call(s) · "
        f"{result.usage.total_tokens:,} tokens · {result.duration_s:.1f} s"
        f"{' · replayed from cassette' if result.replayed else ''}</div>"
    )
    parts = [header]
    if _unsandboxed(result):
        parts.append(f"<div style='color:#cf222e;margin:4px 0'>⚠ {_esc(UNSANDBOXED_WARNING)}</div>")
    elif result.sandbox_warning and result.scripts:
        parts.append(f"<div style='color:#9a6700;margin:4px 0'>⚠ {_esc(result.sandbox_warning)}</div>")
    if result.handed_over:
        parts.append(f"<div style='font-size:12px;color:#57606a;margin:2px 0'>{_esc(handed_over_text(result))}</div>")
    if result.error:
        parts.append(f"<div style='color:{colour};margin:4px 0'>{_esc(result.error)}</div>")
    for n, run in enumerate(result.scripts, 1):
        if run.misbehaved:
            parts.append(f"<div style='color:#cf222e;margin:4px 0'>⚠ Script {n}: {_esc(run.misbehaved)}</div>")
        if run.notice:
            parts.append(f"<div style='color:#9a6700;margin:4px 0'>⚠ Script {n}: {_esc(run.notice)}</div>")
    if result.answer:
        parts.append(f"<div style='margin:6px 0'>{_answer_html(result)}</div>")
    for n, run in enumerate(result.scripts, 1):
        body = code_html(run.code)
        if run.tool_calls:
            body += _details(f"Tool calls ({len(run.tool_calls)})", _calls_table(run.tool_calls), "calls" in opened)
        body += _details(
            f"Output the model saw ({_size(len(run.output))} of {_size(run.output_chars)})",
            f"<pre style='{PRE}'>{_esc(run.output)}</pre>",
            "output" in opened,
        )
        parts.append(_details(_script_title(run, n), body, "code" in opened))
    if result.steps:
        steps = "".join(
            f"<tr><td style='{CELL}'>{s.index}</td><td style='{CELL}'>{_esc(s.stop_reason)}"
            f"{' → ' + _esc(s.read_as) if s.read_as else ''}</td>"
            f"<td style='{CELL}'>{s.input_tokens:,}</td><td style='{CELL}'>{s.output_tokens:,}</td>"
            f"<td style='{CELL}'>{s.duration_s:.2f} s</td><td style='{CELL}'>{_esc(s.text[:300])}</td></tr>"
            for s in result.steps
        )
        head = "".join(f"<th style='{CELL}'>{h}</th>" for h in ("step", "stop", "in", "out", "time", "text"))
        parts.append(
            _details(
                f"Model steps ({len(result.steps)})",
                f"<table style='{TABLE}'><tr>{head}</tr>{steps}</table>",
                "steps" in opened,
            )
        )
    parts.append(_details("Usage", _usage_html(result), "usage" in opened))
    return f"<div style='{BOX}'>{''.join(parts)}</div>"


def _answer_html(result: CodeAgentResult) -> str:
    note = ANSWER_SOURCES.get(result.answer_source)
    if note is None:
        return markdown_html(result.answer)
    return f"<div style='font-size:12px;color:#9a6700'>{_esc(note)}</div><pre style='{PRE}'>{_esc(result.answer)}</pre>"


def _usage_html(result: CodeAgentResult) -> str:
    rows = _usage_rows(result)
    body = "".join(f"<tr><td style='{CELL}'>{_esc(k)}</td><td style='{CELL}'>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table style='{TABLE}'>{body}</table>"


def _usage_rows(result: CodeAgentResult) -> list[tuple[str, str]]:
    u = result.usage
    return [
        ("model", result.model),
        ("requests", f"{u.requests}"),
        ("input tokens", f"{u.input_tokens:,}"),
        ("output tokens", f"{u.output_tokens:,}"),
        ("cache read / write tokens", f"{u.cache_read_input_tokens:,} / {u.cache_creation_input_tokens:,}"),
        ("estimated cost", format_cost(estimate_cost(result.model, u))),
        ("data returned by tools", _size(result.tool_result_chars)),
        ("script output sent to the model", _size(result.model_saw_chars)),
        ("sandbox layers", ", ".join(result.sandbox_layers) or "none"),
    ]


def handed_over_text(result: CodeAgentResult) -> str:
    """``Notebook data handed to the sandbox: sales (named in the question), df (--data)``."""
    shown = ", ".join(f"{name} ({why})" for name, why in result.handed_over.items())
    return f"Notebook data handed to the sandbox: {shown}"


def render_text(result: CodeAgentResult, open_sections: Iterable[str] = ()) -> str:
    """The plain-text view (terminals, text-only frontends): the answer, a one-line summary, then the sections
    named in ``open_sections`` as plain text."""
    lines = []
    if _unsandboxed(result):
        lines.append(f"WARNING: {UNSANDBOXED_WARNING}")
    elif result.sandbox_warning and result.scripts:
        lines.append(f"WARNING: {result.sandbox_warning}")
    if result.error:
        lines.append(safe_text(f"[{result.status}] {result.error}"))
    lines += [f"WARNING: script {n}: {run.misbehaved}" for n, run in enumerate(result.scripts, 1) if run.misbehaved]
    lines += [f"NOTE: script {n}: {run.notice}" for n, run in enumerate(result.scripts, 1) if run.notice]
    if result.handed_over:
        lines.append(safe_text(handed_over_text(result)))
    if result.answer:
        if result.answer_source in ANSWER_SOURCES:
            lines.append(f"({ANSWER_SOURCES[result.answer_source]})")
        lines.append(safe_text(result.answer))
    lines.append(
        f"— codeagent: {len(result.scripts)} script(s), {len(result.tool_calls)} tool call(s), "
        f"{result.usage.total_tokens:,} tokens; tools returned {_size(result.tool_result_chars)}, "
        f"the model saw {_size(result.model_saw_chars)}"
        f"{'; replayed from cassette' if result.replayed else ''}"
    )
    opened = set(open_sections)
    for n, run in enumerate(result.scripts, 1):
        if {"code", "calls", "output"} & opened:
            lines.append("")
            lines.append(_script_title(run, n, escape=False))
        if "code" in opened:
            lines.append(_indent(run.code))
        if "calls" in opened and run.tool_calls:
            lines.append(f"  tool calls ({len(run.tool_calls)}):")
            lines.append(_indent(calls_text(run.tool_calls)))
        if "output" in opened:
            lines.append(f"  output the model saw ({_size(len(run.output))} of {_size(run.output_chars)}):")
            lines.append(_indent(run.output or "(nothing)"))
    if "steps" in opened and result.steps:
        lines.append("")
        lines.append("model steps:")
        lines.extend(
            f"  {s.index}. {s.stop_reason} · in {s.input_tokens:,} · out {s.output_tokens:,} · {s.duration_s:.2f} s"
            for s in result.steps
        )
    if "usage" in opened:
        lines.append("")
        lines.append("usage:")
        lines.extend(f"  {k}: {v}" for k, v in _usage_rows(result))
    return "\n".join(lines)


def calls_text(calls: Iterable[ToolCallRecord], limit: int = 50, width: int = 60) -> str:
    """A compact plain-text table of tool calls: number, call, result (or error), size, time."""
    calls = list(calls)
    rows = []
    for i, c in enumerate(calls[:limit], 1):
        args = ", ".join(f"{k}={v!r}" for k, v in c.arguments.items())
        call = _clip(f"{c.name}({args})", width)
        outcome = _clip(f"✗ {c.error}" if c.error else c.result_preview, width)
        rows.append(
            f"{i:>3}  {call:<{width}}  {outcome:<{width}}  {_size(c.result_chars):>11}  {c.duration_s * 1000:.1f} ms"
        )
    if len(calls) > limit:
        rows.append(f"     … {len(calls) - limit} more calls")
    return "\n".join(row.rstrip() for row in rows)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines()) if text else prefix


def render_bundle(result: CodeAgentResult, open_sections: Iterable[str] = ()) -> dict[str, str]:
    sections = list(open_sections)
    return {"text/plain": render_text(result, sections), "text/html": render_html(result, sections)}
