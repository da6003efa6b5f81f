"""The notebook side: the %codeagent magics, their configuration, and the per-notebook session."""
