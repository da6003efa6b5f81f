"""File-system attacks: the host's secrets (files, environment, /proc), and writes outside the workspace."""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

from IPython.utils.capture import capture_output

from codeagent.sandbox.host.manager import SandboxKernel, python_prefix_paths
from codeagent.testing.messages_server import MessagesServer, Turn, code_turn, text_turn
from tests.conftest import user_variables
from tests.security.attack import MODE, OPT_IN_TRAITS, READ_DENIED, WRITE_DENIED, AttackRunner, last_tool_result
from tests.security.hostside import HostGuard, NotebookKernel

#: names the sandbox's environment must never contain, whatever the host has
SECRET_NAMES = (
    "ANTHROPIC_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "GITHUB_TOKEN",
    "CODEAGENT_CANARY_SECRET",
    "SSH_AUTH_SOCK",
)

#: a secret that lives only in this (the host's) process memory; attacks read /proc/<pid>/mem for it
_MEMORY_SECRET = b"MEMSECRET-" + os.urandom(8).hex().encode()


def _address_of(data: bytes) -> int:
    """Where the bytes of ``data`` sit in this process (CPython: after the object header)."""
    return id(data) + sys.getsizeof(b"") - 1


def test_address_helper_points_at_the_secret() -> None:
    assert ctypes.string_at(_address_of(_MEMORY_SECRET), len(_MEMORY_SECRET)) == _MEMORY_SECRET


def test_workspace_is_usable_control(attack: AttackRunner, host: HostGuard, sandbox: SandboxKernel) -> None:
    """Control: the probes do report success, so the denials below are not artefacts of the harness."""
    a = attack(
        "import json\n"
        "probe('ws_write', lambda: open('result.json', 'w').write(json.dumps({'ok': 1})))\n"
        "probe('ws_read', lambda: open('result.json').read())\n"
        "probe('ws_abs', lambda: open(os.path.join(os.getcwd(), 'result.json')).read())\n"
        "probe('stdlib', lambda: len(open(json.__file__).read()) > 0)\n"
        "probe('cwd', lambda: os.getcwd())\n"
    )
    for label in ("ws_write", "ws_read", "ws_abs", "stdlib"):
        assert a.probe(label).outcome == "ALLOWED", a.output
    assert Path(sandbox.workspace_on_host(), "result.json").read_text() == '{"ok": 1}'
    assert os.path.realpath(str(sandbox.workspace)) in a.probe("cwd").value
    host.assert_unaffected()


def test_read_ssh_keys(attack: AttackRunner, host: HostGuard) -> None:
    key = host.canaries.ssh_key.path
    a = attack(
        f"probe('ssh_key', lambda: open({str(key)!r}).read())\n"
        f"probe('ssh_dir', lambda: os.listdir({str(key.parent)!r}))\n"
        "probe('ssh_home', lambda: os.listdir(os.path.expanduser('~/.ssh')))\n"
    )
    a.assert_denied("ssh_key", READ_DENIED)
    a.assert_denied("ssh_dir", READ_DENIED)
    a.assert_denied("ssh_home", READ_DENIED)  # the sandbox's own home is the workspace: no .ssh there
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_read_root(attack: AttackRunner, host: HostGuard) -> None:
    # The tests write nothing into the machine's /root: probe what is there (its dotfiles, its listing).
    # /root may only show the path down to the Python prefix (pyenv lives under /root on such machines)
    allowed = {Path(p).relative_to("/root").parts[0] for p in python_prefix_paths() if p.startswith("/root/")}
    dotfiles = sorted(n for n in _listing("/root") if n.startswith(".") and n not in allowed)[:5]
    a = attack(
        "try:\n    print('ROOTLIST', __import__('json').dumps(sorted(os.listdir('/root'))))\n"
        "except OSError as e:\n    print('ROOTLIST', type(e).__name__)\n"
        "probe('root_bashrc', lambda: len(open('/root/.bashrc').read()))\n"
        + "".join(f"probe('root_{i}', lambda: os.stat({'/root/' + n!r}))\n" for i, n in enumerate(dotfiles))
    )
    a.assert_denied("root_bashrc", READ_DENIED)
    for i in range(len(dotfiles)):
        a.assert_denied(f"root_{i}", READ_DENIED)
    listing = a.output.split("ROOTLIST ", 1)[1].splitlines()[0]
    if listing.startswith("["):
        shown = set(json.loads(listing))
        assert shown <= allowed, f"/root shows more than the Python prefix: {sorted(shown - allowed)}"
    else:
        assert listing in ("PermissionError", "FileNotFoundError"), listing
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def _listing(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def test_read_dotenv_in_the_notebook_directory(attack: AttackRunner, host: HostGuard, notebook: NotebookKernel) -> None:
    dotenv = host.canaries.dotenv.path
    a = attack(
        f"probe('dotenv', lambda: open({str(dotenv)!r}).read())\n"
        f"probe('notebook_dir', lambda: os.listdir({str(dotenv.parent)!r}))\n"
        "probe('dotenv_cwd', lambda: open('.env').read())\n"
        "probe('dotenv_parent', lambda: open('../.env').read())\n"
    )
    a.assert_denied("dotenv", READ_DENIED)
    a.assert_denied("notebook_dir", READ_DENIED)
    a.assert_denied("dotenv_cwd", READ_DENIED)
    a.assert_denied("dotenv_parent", READ_DENIED)
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_read_host_proc_environ_cmdline_mem(attack: AttackRunner, host: HostGuard, notebook: NotebookKernel) -> None:
    me, nb = os.getpid(), notebook.pid
    address = _address_of(_MEMORY_SECRET)
    a = attack(
        f"probe('host_environ', lambda: open('/proc/{me}/environ', 'rb').read())\n"
        f"probe('host_cmdline', lambda: open('/proc/{me}/cmdline', 'rb').read())\n"
        f"probe('host_maps', lambda: open('/proc/{me}/maps').readline())\n"
        "def mem():\n"
        f"    with open('/proc/{me}/mem', 'rb') as f:\n"
        f"        f.seek({address})\n"
        f"        return f.read({len(_MEMORY_SECRET)})\n"
        "probe('host_mem', mem)\n"
        f"probe('host_fds', lambda: os.listdir('/proc/{me}/fd'))\n"
        f"probe('host_cwd', lambda: os.readlink('/proc/{me}/cwd'))\n"
        f"probe('host_root', lambda: os.listdir('/proc/{me}/root/'))\n"
        f"probe('notebook_environ', lambda: open('/proc/{nb}/environ', 'rb').read())\n"
    )
    for label in ("host_environ", "host_cmdline", "host_maps", "host_mem", "host_fds", "host_cwd", "host_root"):
        a.assert_denied(label, READ_DENIED | {"ESRCH"})
    a.assert_denied("notebook_environ", READ_DENIED | {"ESRCH"})
    assert _MEMORY_SECRET.decode() not in a.output
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_secrets_in_the_environment(attack: AttackRunner, host: HostGuard) -> None:
    """os.environ, and every environment block the sandbox can read in /proc, grepped the way an attacker would."""
    a = attack(
        "import glob, re\n"
        "print('ENV', sorted(os.environ))\n"
        "pattern = re.compile(rb'[A-Z_]*(?:KEY|TOKEN|SECRET|PASSWORD|AUTH)[A-Z_]*=[^\\0]*')\n"
        "hits = [f'{k}={v}' for k, v in os.environ.items() if pattern.match(f'{k}={v}'.encode())]\n"
        "readable = 0\n"
        "for path in ['/proc/self/environ', '/proc/1/environ', *glob.glob('/proc/[0-9]*/environ')]:\n"
        "    try:\n"
        "        hits += [m.decode(errors='replace') for m in pattern.findall(open(path, 'rb').read())]\n"
        "        readable += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "print('READABLE', readable)\n"
        "print('HITS', sorted(set(hits)))\n"
    )
    assert a.status == "ok", a.output
    names = a.output.split("ENV ", 1)[1].splitlines()[0]
    for name in SECRET_NAMES:
        assert f"'{name}'" not in names, f"{name} reached the sandbox's environment"
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_write_outside_the_workspace(attack: AttackRunner, host: HostGuard) -> None:
    targets = {
        k: str(v)
        for k, v in host.canaries.forbidden.items()
        if k in ("tmp", "home", "notebook_dir", "site_packages_pth", "package_source", "etc")
    }
    a = attack(
        f"for label, path in {targets!r}.items():\n"
        "    probe('write_' + label, lambda: open(path, 'x').write('# codeagent security test\\n'))\n"
        f"probe('mkdir_tmp', lambda: os.mkdir({str(host.canaries.forbidden['tmp_dir'])!r}))\n"
    )
    for label in targets:
        if label != "tmp":
            a.assert_denied("write_" + label, WRITE_DENIED)
    # /tmp may be the sandbox's own private tmpfs: writing there is fine as long as the host's /tmp is untouched
    for label in ("write_tmp", "mkdir_tmp"):
        assert a.probe(label).denied or a.probe(label).outcome == "ALLOWED"
    assert not os.path.exists(targets["tmp"]) and not host.canaries.forbidden["tmp_dir"].exists()
    host.assert_unaffected()


def test_write_into_ipython_startup(attack: AttackRunner, host: HostGuard) -> None:
    startup = host.canaries.forbidden["ipython_startup"]
    a = attack(
        f"probe('startup_file', lambda: open({str(startup)!r}, 'x').write('# codeagent security test\\n'))\n"
        "def via_profile_dir():\n"
        "    from IPython.paths import get_ipython_dir\n"
        "    d = os.path.join(get_ipython_dir(), 'profile_default', 'startup')\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "    path = os.path.join(d, '00-pwned.py')\n"
        "    open(path, 'w').write('# codeagent security test\\n')\n"
        "    return path\n"
        "probe('sandbox_profile', via_profile_dir)\n"
    )
    a.assert_denied("startup_file", WRITE_DENIED)
    # The sandbox's own IPython directory (under its home, the workspace) is its business; it must not be the
    # host's: the host's startup directory is unchanged (checked below) whatever the script wrote there.
    sandbox_profile = a.probe("sandbox_profile")
    if not sandbox_profile.denied:
        assert str(host.canaries.startup_dir) not in sandbox_profile.value
    host.assert_unaffected()


def test_tamper_with_host_files(attack: AttackRunner, host: HostGuard) -> None:
    ssh, dotenv = str(host.canaries.ssh_key.path), str(host.canaries.dotenv.path)
    a = attack(
        f"probe('append_key', lambda: open({ssh!r}, 'a').write('pwned'))\n"
        f"probe('chmod_key', lambda: os.chmod({ssh!r}, 0o644))\n"
        f"probe('remove_dotenv', lambda: os.remove({dotenv!r}))\n"
        f"probe('rename_dotenv', lambda: os.rename({dotenv!r}, {dotenv + '.bak'!r}))\n"
        f"probe('utime_key', lambda: os.utime({ssh!r}, (0, 0)))\n"
    )
    for label in ("append_key", "chmod_key", "remove_dotenv", "rename_dotenv", "utime_key"):
        a.assert_denied(label, WRITE_DENIED)
    host.assert_unaffected()


def test_links_out_of_the_workspace(attack: AttackRunner, host: HostGuard) -> None:
    ssh = str(host.canaries.ssh_key.path)
    target = str(host.canaries.forbidden["package_source"])
    a = attack(
        f"os.symlink({ssh!r}, 'key_link')\n"
        "probe('read_symlink', lambda: open('key_link').read())\n"
        f"probe('hardlink', lambda: os.link({ssh!r}, 'key_hard'))\n"
        f"os.symlink({os.path.dirname(target)!r}, 'pkg_link')\n"
        f"probe('write_via_symlink', lambda: open('pkg_link/{os.path.basename(target)}', 'x').write('x'))\n"
        "probe('etc_shadow', lambda: len(open('/etc/shadow').read()))\n"
    )
    a.assert_denied("read_symlink", READ_DENIED)
    a.assert_denied("hardlink", WRITE_DENIED | {"EXDEV"})
    a.assert_denied("write_via_symlink", WRITE_DENIED)
    a.assert_denied("etc_shadow", READ_DENIED)
    a.assert_no_secret(host.all_secrets())
    host.assert_unaffected()


def test_environment_and_notebook_variables_through_the_magic(
    shell: Any, model_server: MessagesServer, registry: Any, fresh_conversation: None, host: HostGuard
) -> None:
    """The same secrets attack through ``%codeagent`` in an IPython shell: the notebook's variables survive."""
    shell.user_ns["balance"] = 1234
    shell.user_ns["api_settings"] = {"region": "eu"}
    before = user_variables(shell)
    me = os.getpid()
    seen: dict[str, str] = {}

    def answer(body: dict[str, Any]) -> Turn:
        seen["output"] = last_tool_result(body)
        return text_turn("done")

    script = (
        "import os\n"
        "print(dict(os.environ))\n"
        f"try:\n    print(open('/proc/{me}/environ', 'rb').read())\nexcept OSError as e:\n"
        "    print('environ', type(e).__name__, e.errno)\n"
        "balance = -1\n"
        "api_settings = 'pwned'\n"
    )
    model_server.add_turns(code_turn(script), answer)
    magic = shell.magics_manager.registry["CodeAgent"]
    saved = {name: getattr(magic, name) for name in ("sandbox_mode", *OPT_IN_TRAITS)}
    magic.sandbox_mode = MODE
    for name, value in OPT_IN_TRAITS.items():
        setattr(magic, name, value)
    try:
        with capture_output():
            result = shell.run_line_magic("codeagent", "--timeout 20 What is in the environment?")
    finally:
        for name, value in saved.items():
            setattr(magic, name, value)
    assert result.status == "done", result.error
    output = seen["output"]
    assert any(f"environ {e}" in output for e in ("PermissionError", "FileNotFoundError", "ProcessLookupError")), output
    leaked = [s for s in host.all_secrets() if s in output]
    assert not leaked, f"secrets reached the model through the magic: {leaked}"
    assert user_variables(shell) == before
    host.assert_unaffected()
