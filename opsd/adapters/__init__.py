"""Adapters: the only modules that start processes, open sockets or touch the filesystem."""
