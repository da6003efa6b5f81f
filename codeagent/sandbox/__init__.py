"""The locked-down kernel, split by where code runs: ``host`` (the notebook kernel), ``guest`` (inside the
lockdown) and ``protocol`` (shared by both)."""
