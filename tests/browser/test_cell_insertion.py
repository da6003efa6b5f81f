"""``%codeagent --cell`` in a real JupyterLab (Debian's chromium): the rewritten scripts appear as a new cell
below the magic's cell, and running that cell prints the sandbox's output with no model behind it.

The notebook's kernel reaches a scripted Messages API server on 127.0.0.1 (the test's process); after the
magic's call the server has no turns left, so the new cell's output cannot come from a model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from codeagent.examples.expenses import make_expense_data, over_budget_script
from codeagent.testing.messages_server import MessagesServer, code_turn, text_turn
from tests.browser.test_jupyterlab import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Lab,
    serve_lab,
    wait_for_idle_kernel,
)
from tests.integration.test_expense_nbclient import CELLS as EXPENSE_CELLS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium (apt-get install -y chromium)"
    ),
]

QUESTION = 'Who on team "platform" went over budget in 2026-10, and by how much?'
NOTEBOOK = "cell.ipynb"


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, MessagesServer]]:
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    cells = [*EXPENSE_CELLS[:3], f"%codeagent --cell {QUESTION}"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / NOTEBOOK)
    with MessagesServer() as server:
        server.add_turns(code_turn(over_budget_script()), text_turn("Seven members went over budget."))
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test-key-not-secret"}
        with serve_lab(root, home, env) as lab:
            yield lab, server


@pytest.fixture
def page(served: tuple[Lab, MessagesServer]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_the_new_cell_appears_below_and_reproduces_the_output(served: tuple[Lab, MessagesServer], page: Any) -> None:
    lab, server = served
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    wait_for_idle_kernel(lab)
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=60_000)
    cells = page.locator(".jp-Notebook .jp-Cell")
    assert cells.count() == 4

    page.locator("li.lm-MenuBar-item", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    with contextlib.suppress(Exception):
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=3_000)

    new_cell = cells.filter(has_text="# codeagent: the code").first
    try:
        new_cell.wait_for(timeout=180_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-cell-failed.png"))
        raise AssertionError(f"no cell appeared; server log:\n{lab.log.read_text()[-3000:]}") from None
    assert cells.count() == 5
    texts = cells.evaluate_all("cells => cells.map(c => c.querySelector('.jp-InputArea').innerText)")
    assert "%codeagent --cell" in texts[3] and "# codeagent: the code" in texts[4]  # right below the magic
    assert "NOT in the sandbox" in texts[4] and "get_expenses_tool = notebook_tool('get_expenses')" in texts[4]
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-cell-inserted.png"))

    # Run the new cell: the same lines the sandbox printed, and no further request to the model.
    asked = len(server.requests)
    new_cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    output = new_cell.locator(".jp-OutputArea-output", has_text="members checked: 50")
    output.wait_for(timeout=60_000)
    truth = make_expense_data(members=50, per_member=40, month="2026-10").over_budget("2026-10")
    printed = output.inner_text()
    for name, amount in truth.items():
        assert f"{name}: {amount:.2f}" in printed
    assert len(server.requests) == asked
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-cell-ran.png"))
