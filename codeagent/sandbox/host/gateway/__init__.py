"""Sandboxes run by a Jupyter Kernel Gateway or Enterprise Gateway: REST + websocket client, the stdin-channel
tool bridge, and the sandbox that drives a remote kernel (see ``sandbox.py``)."""
