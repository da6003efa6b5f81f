"""Every example notebook, executed by nbclient in a real kernel with no API key and no reachable API."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

from codeagent.agent.cassette import SCRIPTED, Cassette
from codeagent.examples.expenses import make_expense_data
from codeagent.examples.runner import kernel_env, run_notebook
from codeagent.testing.messages_server import MessagesServer

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SUMMARY_LINE = "— codeagent:"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
REGENERATE = (
    "If a replay mismatch is reported and the change is intended (a prompt, a tool or an example changed), "
    "make the cassettes again: python notebooks/make_cassettes.py"
)

pytestmark = pytest.mark.slow


def cassette_of(notebook: Path) -> Path:
    return notebook.with_name(notebook.stem + ".cassette.json")


def copy_notebook(notebook: Path, into: Path) -> Path:
    """The notebook and its cassette copied into ``into`` (the committed files are never written)."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cassette_of(notebook), into / cassette_of(notebook).name)
    return Path(shutil.copyfile(notebook, into / notebook.name))


def question_cells(nb: Any) -> list[Any]:
    """Code cells that ask %codeagent a question (not --sandbox-info, not --new alone)."""
    return [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and re.match(r"%%?codeagent\b", c.source.lstrip())
        and "--sandbox-info" not in c.source.splitlines()[0]
    ]


def final_views(cell: Any) -> list[str]:
    """The text/plain of each codeagent final view in a cell's outputs."""
    return [
        str(o["data"]["text/plain"])
        for o in cell.get("outputs", [])
        if o.get("output_type") in ("execute_result", "display_data")
        and SUMMARY_LINE in str(o.get("data", {}).get("text/plain", ""))
    ]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    """The text of an HTML document or fragment, whitespace collapsed."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def load_make_cassettes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_cassettes", NOTEBOOK_DIR / "make_cassettes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=lambda p: p.stem)
def executed(request: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One notebook run offline in a temporary copy: (its path, the executed notebook)."""
    copy = copy_notebook(request.param, tmp_path_factory.mktemp(request.param.stem))
    try:
        nb, _ = run_notebook(copy, env=kernel_env())
    except CellExecutionError as e:
        pytest.fail(f"{request.param.name} failed offline:\n{e}\n{REGENERATE}")
    return copy, nb


def test_there_are_the_four_example_notebooks() -> None:
    assert {p.stem for p in NOTEBOOKS} == {"quickstart", "data_analysis", "sandbox_tour", "workshop"}


def test_every_answer_is_replayed_offline(executed: tuple[Path, Any]) -> None:
    _, nb = executed
    cells = question_cells(nb)
    assert cells, "the notebook asks no question"
    for cell in cells:
        views = final_views(cell)
        assert len(views) == 1, f"no final view for {cell.source!r}: {cell.outputs}"
        stopped_on_purpose = "--max-" in cell.source and views[0].startswith("[budget] Stopped by --max-")
        assert stopped_on_purpose or not views[0].startswith("["), f"{views[0]}\n{REGENERATE}"  # "[error] …"
        assert views[0].rstrip().endswith("replayed from cassette"), views[0]


def test_saved_widget_state_is_valid(executed: tuple[Path, Any]) -> None:
    _, nb = executed
    nbformat.validate(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    if state is not None:
        assert state["version_major"] == 2
        models = state["state"]
        referenced = set(re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(models)))
        assert referenced <= set(models), f"widget state refers to missing models: {referenced - set(models)}"
        assert all({"model_name", "model_module", "state"} <= set(m) for m in models.values())
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view is not None:
                assert state is not None and view["model_id"] in state["state"]


def test_the_html_export_shows_the_answers(executed: tuple[Path, Any]) -> None:
    _, nb = executed
    exported, _ = HTMLExporter().from_notebook_node(nb)
    page = visible_text(exported)
    for cell in question_cells(nb):
        (view,) = (o["data"] for o in cell.outputs if SUMMARY_LINE in o["data"].get("text/plain", ""))
        assert "<details" in view["text/html"]
        answer = visible_text(view["text/html"])
        assert "replayed from cassette" in answer
        assert answer in page


def test_the_quickstart_answer_matches_the_ground_truth(executed: tuple[Path, Any]) -> None:
    path, nb = executed
    if path.stem != "quickstart":
        pytest.skip("ground truth is checked for the quickstart")
    (answer,) = final_views(question_cells(nb)[0])
    rows = dict(re.findall(r"\| (Member \d{4}) \| [\d,.]+ \| [\d,]+ \| \*\*([\d,.]+)\*\* \|", answer))
    truth = make_expense_data(members=50, per_member=40, month="2026-10").over_budget("2026-10")
    assert {name: float(v.replace(",", "")) for name, v in rows.items()} == truth


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_are_executed_and_say_where_their_turns_come_from(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "run every cell in order before committing"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    for cell in question_cells(nb):
        assert any(v.rstrip().endswith("replayed from cassette") for v in final_views(cell))
    cassette = Cassette.load(cassette_of(notebook))
    assert cassette.turns
    if cassette.source == SCRIPTED:
        notes = [
            c.source for c in nb.cells if c.cell_type == "markdown" and "not recorded from a live model" in c.source
        ]
        assert notes, f"{notebook.name} must say in a markdown cell that its turns were scripted"


def test_the_packaged_quickstart_is_the_notebooks_one() -> None:
    packaged = ROOT / "codeagent" / "examples"
    for name in ("quickstart.ipynb", "quickstart.cassette.json"):
        assert filecmp.cmp(NOTEBOOK_DIR / name, packaged / name, shallow=False), (
            f"run notebooks/make_cassettes.py ({name})"
        )


def test_a_replay_mismatch_is_reported_in_the_notebook(tmp_path: Path) -> None:
    copy = copy_notebook(NOTEBOOK_DIR / "quickstart.ipynb", tmp_path)
    nb = nbformat.read(copy, as_version=4)
    ask = question_cells(nb)[0]
    nb.cells = nb.cells[: nb.cells.index(ask) + 1]
    tools = next(c for c in nb.cells if "make_expense_data(" in c.source)
    tools.source = tools.source.replace('month="2026-10")', 'month="2026-10", seed=8)')  # other data
    assert "seed=8" in tools.source
    nbformat.write(nb, copy)
    executed, _ = run_notebook(copy, env=kernel_env())
    (view,) = final_views(question_cells(executed)[0])
    assert view.startswith('[error] turn 2 (question "Who on team "platform" went over budget in 2026-10, and')
    assert "the tool_result differs from the recording: expected '" in view
    assert "--record quickstart.cassette.json" in view


def test_record_then_replay_reproduces_the_answer(tmp_path: Path) -> None:
    make_cassettes = load_make_cassettes()
    copy = copy_notebook(NOTEBOOK_DIR / "quickstart.ipynb", tmp_path)
    cassette_of(copy).unlink()
    with MessagesServer(make_cassettes.QUICKSTART) as server:
        env = kernel_env({"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test-key-not-secret"})
        recorded, _ = run_notebook(copy, env=env)
        assert not server.errors and server.turns_left == 0
    (live,) = final_views(question_cells(recorded)[0])
    assert "replayed" not in live
    assert len(Cassette.load(cassette_of(copy)).turns) == 2
    replayed, _ = run_notebook(copy, env=kernel_env())
    (again,) = final_views(question_cells(replayed)[0])
    assert again.rstrip().endswith("replayed from cassette")
    assert again.splitlines()[:-1] == live.splitlines()[:-1]


def test_the_demo_command_runs_offline(tmp_path: Path) -> None:
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    out = tmp_path / "cache" / "codeagent" / "demo"  # the user's cache folder, not the current directory
    done = subprocess.run(
        [sys.executable, "-m", "codeagent", "demo"],
        cwd=cwd,
        env=kernel_env({"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert list(cwd.iterdir()) == []  # nothing written where it was run (a checkout stays clean)
    assert f"writing to {out}" in done.stdout and f"wrote {out / 'quickstart.ipynb'}" in done.stdout
    truth = make_expense_data(members=50, per_member=40, month="2026-10").over_budget("2026-10")
    for name, amount in truth.items():
        assert f"| {name} |" in done.stdout and f"{amount:,.2f}" in done.stdout
    summary = next(line for line in done.stdout.splitlines() if "tool calls in" in line)
    assert summary.startswith("51 tool calls in 1 script(s) · the tools returned ")
    assert "~" in summary and "tokens estimated at 4 chars/token" in summary and "replayed from cassette" in summary
    executed = nbformat.read(out / "quickstart.ipynb", as_version=4)
    nbformat.validate(executed)
    assert "codeagent-demo-summary" not in json.dumps(executed)
    html = (out / "quickstart.html").read_text()
    assert all(name in html for name in truth)
