"""Runs in the notebook kernel: the sandbox manager, warm pool, tool-bridge server, policy and layer choice."""
