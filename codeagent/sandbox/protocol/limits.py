"""Size limits both sides of the tool bridge agree on (the host's are configurable through ``SandboxPolicy``)."""

from __future__ import annotations

MIB = 1024 * 1024
#: Largest message the sandbox may send (tool arguments, ``set_result``): ``SandboxPolicy.bridge_request_mb``.
DEFAULT_MAX_REQUEST_BYTES = 256 * MIB
#: Largest reply the host sends into the sandbox (a tool result, a ``--data`` value): ``bridge_reply_mb``.
DEFAULT_MAX_REPLY_BYTES = 512 * MIB
#: What the guest accepts at most in one reply, whatever the host's setting (a ceiling, not a policy).
GUEST_MAX_REPLY_BYTES = 4 * 1024 * MIB
#: Parts in one bridge frame: token, head, body and the binary buffers of arrays and tables.
MAX_FRAME_PARTS = 1024
