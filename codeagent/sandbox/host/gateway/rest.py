"""The REST side of a Jupyter Kernel Gateway / Enterprise Gateway: start, interrupt, restart and delete kernels.

Every failure becomes a :class:`GatewayError` with one line saying what to check; the token is sent as an
``Authorization: token …`` header and never appears in a message.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

log = logging.getLogger("codeagent.gateway")


class GatewayError(RuntimeError):
    """The gateway could not be reached, refused us, or lost the kernel."""


class GatewayClient:
    """A small client of the gateway's ``/api/kernels`` and ``/api/kernelspecs`` endpoints."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GatewayError(f"gateway_url must be an http(s) URL such as http://127.0.0.1:8888, not {url!r}")
        self.url = urlunsplit(parts)
        self._token = token or ""
        headers = {"Authorization": f"token {self._token}"} if self._token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)

    @property
    def auth_headers(self) -> list[str]:
        """Headers for the websocket handshake (jupyter_server's own gateway client sends none)."""
        return [f"Authorization: token {self._token}"] if self._token else []

    def channels_url(self, kernel_id: str) -> str:
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/api/kernels/{quote(kernel_id)}/channels", "", ""))

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise GatewayError(f"the gateway at {self.url} did not answer in time ({what})") from None
        except httpx.HTTPError as e:
            raise GatewayError(
                f"cannot reach the gateway at {self.url} ({type(e).__name__}): is it running? "
                "Check CodeAgent.gateway_url / JUPYTER_GATEWAY_URL."
            ) from None
        if response.status_code == 401 or (response.status_code == 403 and not _reason(response)):
            raise GatewayError(
                f"the gateway at {self.url} refused us ({response.status_code}) while trying to {what}: "
                "check CodeAgent.gateway_token / JUPYTER_GATEWAY_AUTH_TOKEN."
            )
        if response.status_code == 403:
            raise GatewayError(
                f"the gateway at {self.url} refused to {what} (403): {_reason(response)} "
                "(if the token is right, ask the gateway's administrator)"
            )
        return response

    def kernelspec_names(self) -> list[str]:
        response = self._request("GET", "/api/kernelspecs", "list kernelspecs")
        if response.status_code != 200:
            raise GatewayError(f"the gateway at {self.url} answered {response.status_code} for /api/kernelspecs")
        specs = response.json().get("kernelspecs", {})
        return sorted(specs) if isinstance(specs, dict) else []

    def start_kernel(self, name: str, env: dict[str, str]) -> str:
        """Start a kernel of kernelspec ``name``; returns its id."""
        response = self._request("POST", "/api/kernels", "start a kernel", json={"name": name, "env": env})
        if response.status_code not in (200, 201):
            names = self._names_or_empty()
            if names and name not in names:
                raise GatewayError(
                    f"the gateway at {self.url} has no kernelspec {name!r} (it has: {', '.join(names)}); "
                    "install codeagent's with `python -m codeagent.sandbox.host.remote_kernel install` on the "
                    "gateway's machine, or set CodeAgent.gateway_kernel_name."
                )
            raise GatewayError(
                f"the gateway at {self.url} could not start a {name!r} kernel ({response.status_code}): "
                f"{_reason(response)}"
            )
        kernel_id = response.json().get("id")
        if not isinstance(kernel_id, str):
            raise GatewayError(f"the gateway at {self.url} answered a kernel start without an id")
        log.debug("gateway kernel %s started (%s)", kernel_id, name)
        return kernel_id

    def _names_or_empty(self) -> list[str]:
        try:
            return self.kernelspec_names()
        except GatewayError:
            return []

    def kernel_state(self, kernel_id: str) -> str | None:
        """The kernel's execution state, or None when the gateway no longer has it."""
        response = self._request("GET", f"/api/kernels/{quote(kernel_id)}", "look up a kernel")
        if response.status_code == 404:
            return None
        state = response.json().get("execution_state") if response.status_code == 200 else None
        return state if isinstance(state, str) else "unknown"

    def interrupt(self, kernel_id: str) -> None:
        self._request("POST", f"/api/kernels/{quote(kernel_id)}/interrupt", "interrupt a kernel")

    def restart(self, kernel_id: str) -> None:
        response = self._request("POST", f"/api/kernels/{quote(kernel_id)}/restart", "restart a kernel")
        if response.status_code not in (200, 201):
            raise GatewayError(f"the gateway could not restart kernel {kernel_id} ({response.status_code})")

    def delete(self, kernel_id: str) -> None:
        self._request("DELETE", f"/api/kernels/{quote(kernel_id)}", "shut a kernel down")

    def close(self) -> None:
        self._http.close()


def _reason(response: httpx.Response) -> str:
    """The gateway's own explanation, if it gave one (never echoed back in full: 200 characters)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] if "<html" not in response.text[:200].lower() else ""
    reason = body.get("message") or body.get("reason") if isinstance(body, dict) else None
    return str(reason or body)[:200]
