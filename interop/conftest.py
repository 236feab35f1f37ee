"""pytest wiring for the interop suite.

Owns: the rule that every test is tagged exactly one of `portable` or
`stompkit_only` (collection fails otherwise, so no test escapes the
`--portable-only` filter by accident), the `client` fixture, a factory
of connected stomp.py clients that are all closed at teardown, and the
cluster run (STOMPKIT_INTEROP_NODES with several nodes): every test places its
connections round-robin over the nodes from the first one, and the tests
marked `single_node` (tags.py) are deselected, each with the reason its marker
gives, listed at the end of the run.
"""

import pytest

import support
from support import Client

TAGS = {"portable", "stompkit_only"}
# The tests a cluster run deselected: [(nodeid, reason), ...].
SINGLE_NODE = pytest.StashKey[list]()


def pytest_report_header(config):
    if support.CLUSTER:
        nodes = ", ".join(f"{host}:{port}" for host, port in support.NODES)
        return f"cluster run: connections round-robin over {len(support.NODES)} nodes ({nodes})"
    return None


def single_node_reason(item):
    """The reason of `item`'s `single_node` marker, or None without one."""
    marker = item.get_closest_marker("single_node")
    if marker is None:
        return None
    return marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")


def pytest_collection_modifyitems(config, items):
    problems = []
    for item in items:
        tags = {m.name for m in item.iter_markers()} & TAGS
        if len(tags) != 1:
            problems.append(f"{item.nodeid} has tags {sorted(tags)}")
        if single_node_reason(item) == "":
            problems.append(f"{item.nodeid} is single_node without a reason")
    if problems:
        raise pytest.UsageError(
            "every interop test needs exactly one of @portable / @stompkit_only, "
            "and @single_node needs a reason:\n  " + "\n  ".join(problems)
        )
    if not support.CLUSTER:
        return
    kept, deselected = [], []
    for item in items:
        (kept if single_node_reason(item) is None else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
        config.stash[SINGLE_NODE] = [(item.nodeid, single_node_reason(item)) for item in deselected]


def pytest_terminal_summary(terminalreporter, config):
    deselected = config.stash.get(SINGLE_NODE, [])
    if deselected:
        terminalreporter.section("deselected in the cluster run (single_node)")
        for nodeid, reason in deselected:
            terminalreporter.write_line(f"{nodeid}: {reason}")


@pytest.fixture(autouse=True)
def _first_node():
    """Each test's first connection goes to the first node (cluster runs)."""
    support.reset_nodes()
    yield


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
