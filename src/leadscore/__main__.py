"""``python -m leadscore``."""

from leadscore.cli import main

main()
