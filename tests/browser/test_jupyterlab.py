"""The quickstart in a real JupyterLab, driven through Debian's chromium: run it, read the answer, open the details.

JupyterLab runs on 127.0.0.1 (random port, token auth) over a temporary root holding a copy of the quickstart
(outputs cleared) and its cassette; its kernels have no API key and the API base URL points at a closed port,
so the answer can only come from the replay. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from codeagent.examples.expenses import make_expense_data
from codeagent.examples.runner import kernel_env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium (apt-get install -y chromium)"
    ),
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cleared_copy(name: str, into: Path) -> None:
    """The notebook without outputs, execution counts or widget state, so every output seen is fresh."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, into / name)


def write_settings(settings: Path) -> None:
    """No news fetching (and no toast asking about it)."""
    path = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    cleared_copy("quickstart.ipynb", root)
    shutil.copyfile(ROOT / "notebooks" / "quickstart.cassette.json", root / "quickstart.cassette.json")
    with serve_lab(root, home) as running:
        yield running


@contextlib.contextmanager
def serve_lab(root: Path, home: Path, env_overrides: dict[str, str] | None = None) -> Iterator[Lab]:
    """JupyterLab over ``root`` (settings, kernels' IPython and Jupyter dirs under ``home``) until the block ends."""
    write_settings(home / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = kernel_env(
        {
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "IPYTHONDIR": str(home / "ipython"),
            **(env_overrides or {}),
        }
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
    ]
    if os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    log = home / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, token, server, log)
        yield Lab(url, token, root, log)
    finally:
        # The server shuts its kernels down on SIGTERM, but nothing unloads codeagent in them: stop the
        # sandboxes the notebook's kernel started (by pid) once the server is gone.
        sandboxes = [pid for pid in descendants(server.pid) if b"codeagent.sandbox.guest.launcher" in command_line(pid)]
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        for pid in sandboxes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_for_server(url: str, token: str, server: subprocess.Popen[Any], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"JupyterLab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"JupyterLab did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}")


def wait_for_idle_kernel(lab: Lab, timeout: float = 90) -> None:
    """Until the notebook's session has a kernel that reports idle (REST API)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{lab.url}/api/sessions?token={lab.token}", timeout=5) as reply:
            sessions = json.load(reply)
        if any(s.get("kernel", {}).get("execution_state") == "idle" for s in sessions):
            return
        time.sleep(0.3)
    raise AssertionError(f"the notebook's kernel never became idle:\n{lab.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_quickstart_runs_in_jupyterlab_with_the_details_folded(lab: Lab, page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    truth = make_expense_data(members=50, per_member=40, month="2026-10").over_budget("2026-10")
    top = max(truth, key=truth.__getitem__)

    page.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
    wait_for_idle_kernel(lab)
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=60_000)
    assert page.locator(".jp-OutputArea-output").count() == 0  # nothing to see before running

    page.locator("li.lm-MenuBar-item", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    accept = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel", if the session was still connecting
    with contextlib.suppress(Exception):
        accept.click(timeout=3_000)

    view = page.locator(".jp-OutputArea-output").filter(has_text="replayed from cassette")
    try:
        view.wait_for(timeout=180_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-quickstart-failed.png"))
        raise AssertionError(f"no replayed answer appeared; server log:\n{lab.log.read_text()[-3000:]}") from None
    view.scroll_into_view_if_needed()

    # The answer is visible; everything else is folded.
    answer_cell = view.locator("td", has_text=top).first
    assert answer_cell.is_visible()
    assert view.locator("strong", has_text=f"{truth[top]:,.2f}").first.is_visible()
    opened = view.locator("details").evaluate_all("elements => elements.map(e => e.open)")
    assert opened and not any(opened), f"details should start folded: {opened}"
    calls = view.locator("td", has_text="get_team_members")
    assert calls.count() == 1 and not calls.first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-quickstart-answer.png"))

    # Open the script, then its tool calls: a row per call.
    view.locator("summary", has_text="Script 1").click()
    view.locator("summary", has_text="Tool calls (51)").click()
    assert calls.first.is_visible()
    rows = view.locator("details details table tr")
    assert rows.count() == 52  # header + 51 calls
    assert view.locator("td", has_text='"member_id": "m0049"').first.is_visible()
    calls.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-quickstart-tool-calls.png"))
