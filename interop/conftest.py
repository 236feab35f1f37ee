"""pytest wiring for the interop suite.

Owns: the rule that every test is tagged exactly one of `portable` or
`stompkit_only` (collection fails otherwise, so no test escapes the
`--portable-only` filter by accident), and the `client` fixture, a factory
of connected stomp.py clients that are all closed at teardown.
"""

import pytest

from support import Client

TAGS = {"portable", "stompkit_only"}


def pytest_collection_modifyitems(config, items):
    untagged = []
    for item in items:
        tags = {m.name for m in item.iter_markers()} & TAGS
        if len(tags) != 1:
            untagged.append(f"{item.nodeid} has tags {sorted(tags)}")
    if untagged:
        raise pytest.UsageError(
            "every interop test needs exactly one of @portable / @stompkit_only:\n  " + "\n  ".join(untagged)
        )


@pytest.fixture
def client():
    """`client(version, connect=True, **kwargs)` -> a `support.Client`, closed after the test."""
    made = []

    def make(version, connect=True, connect_headers=None, **kwargs):
        c = Client(version, **kwargs)
        made.append(c)
        if connect:
            c.connect(**(connect_headers or {}))
        return c

    yield make
    for c in made:
        c.close()
