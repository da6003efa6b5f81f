"""Shared by host and guest: the frame codec and the launch spec. Standard library only."""
