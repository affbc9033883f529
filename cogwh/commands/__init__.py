"""One module per cogwh subcommand."""
