"""The locked-down kernel: launcher, lockdown layers, kernel manager, bridge and runtime."""
