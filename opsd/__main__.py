from opsd.cli import entry

entry()
