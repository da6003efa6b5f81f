"""Runs inside the lockdown: launcher, lockdown layers, kernel entry and the stub runtime.

Standard library and ``codeagent.sandbox.protocol`` only (plus ipykernel, which the kernel entry starts);
``.ci/run`` checks this with import-linter.
"""
