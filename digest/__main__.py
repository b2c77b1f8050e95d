from digest.cli import cli

cli()
