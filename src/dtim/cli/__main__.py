"""``python -m dtim.cli``."""

from dtim.cli.main import main

main()
