"""Subcommands of the ``symdl`` command line (see `symdl.cli`)."""
