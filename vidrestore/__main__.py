"""``python -m vidrestore`` runs the command line."""

from .cli import main

main()
