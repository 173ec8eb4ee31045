"""`python -m dualanodiff` (and `accelerate launch -m dualanodiff`) runs the command-line interface."""

from dualanodiff.cli import main

main()
