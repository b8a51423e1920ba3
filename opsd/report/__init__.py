"""Renderers: console tables and JSON. They never touch a database or run a command."""
