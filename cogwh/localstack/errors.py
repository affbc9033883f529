"""The one error the local stack raises for anything it refuses to run."""

from __future__ import annotations


class LocalStackError(Exception):
    """The template, an ASL file, a handler or the environment cannot run on the local stack.

    The message names the resource and the property (or the file and the state) at fault. It never
    carries a parameter's, an environment variable's or a secret's value."""
