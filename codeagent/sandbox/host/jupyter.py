"""The one place that knows how jupyter_client is asked to start the sandbox's kernel (public API only).

A ``KernelManager`` normally looks its kernel up by name among the installed kernelspecs; the sandbox's kernel is
not installed anywhere, so the manager gets a ``KernelSpecManager`` that knows just that one spec.
``tests/unit/test_dependency_seams.py`` fails loudly if jupyter_client stops honouring either.
"""

from __future__ import annotations

from typing import Any

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.provisioning import LocalProvisioner

SANDBOX_KERNEL_NAME = "codeagent-sandbox"


class OneSpecManager(KernelSpecManager):
    """A kernelspec manager holding exactly one spec, under :data:`SANDBOX_KERNEL_NAME`."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def find_kernel_specs(self) -> dict[str, str]:
        return {}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != SANDBOX_KERNEL_NAME:
            raise NoSuchKernel(kernel_name)
        return self.spec


def kernel_manager(argv: list[str], *, ip: str, connection_file: str, display_name: str) -> KernelManager:
    """A manager that starts ``argv`` as the kernel (ipc transport, sockets at ``ip``), interrupted by SIGINT."""
    spec = KernelSpec(argv=argv, language="python", display_name=display_name, interrupt_mode="signal")
    km = KernelManager(transport="ipc", kernel_name=SANDBOX_KERNEL_NAME, kernel_spec_manager=OneSpecManager(spec))
    km.ip = ip
    km.connection_file = connection_file
    return km


def exit_status(km: KernelManager | None) -> int | None:
    """The kernel process's exit status once it has ended (None while it runs, or when unknown)."""
    provisioner = km.provisioner if km is not None else None
    if isinstance(provisioner, LocalProvisioner) and provisioner.process is not None:
        return provisioner.process.poll()
    return None


def process_id(km: KernelManager | None) -> int | None:
    """The pid of the process the manager started (the sandbox's launcher), or None."""
    provisioner = km.provisioner if km is not None else None
    if isinstance(provisioner, LocalProvisioner) and provisioner.process is not None:
        return int(provisioner.process.pid)
    return None
