"""Drawing the trace: the live view while a call runs and the static view it becomes."""
