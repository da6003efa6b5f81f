"""Fixtures: a real Jupyter Kernel Gateway (``codeagent.testing.gateway``); skipped, saying why, without one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeagent.testing.gateway import Gateway, NoGateway, start_gateway, stop_gateway


def gateway_or_skip(**options: object) -> Gateway:
    try:
        return start_gateway(**options)  # type: ignore[arg-type]
    except NoGateway as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    gw = gateway_or_skip()
    yield gw
    stop_gateway(gw)


@pytest.fixture
def gateway_config(shell: object, gateway: Gateway) -> Iterator[Gateway]:
    """The test's shell pointed at the gateway (and back at this machine afterwards)."""
    magic = shell.magics_manager.registry["CodeAgent"]  # type: ignore[attr-defined]
    magic.gateway_url, magic.gateway_token = gateway.url, gateway.token
    yield gateway
    magic.gateway_url, magic.gateway_token = None, None
    magic.session.close()  # the sandbox and the pool of gateway kernels
