"""What the launcher execs: ipykernel, adjusted to run without any TCP (the sandbox may have no AF_INET)."""

from __future__ import annotations


def main() -> None:
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
