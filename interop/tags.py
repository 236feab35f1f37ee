"""The two tags of the interop suite (see pytest.ini and conftest.py), and the
`single_node` marker.

`portable`: the STOMP specifications (or behaviour every mainstream broker
shares, such as RabbitMQ's) require it; never asserts stompkit's own header
values or error texts, so a later relay issue runs these against RabbitMQ.
`stompkit_only`: pins stompkit-broker's own choices.
`single_node(reason)`: cannot hold with the test's connections spread over
the nodes of a clustered broker (STOMPKIT_INTEROP_NODES), for the reason
given; the cluster run deselects it and lists it with that reason.
"""

import pytest

portable = pytest.mark.portable
stompkit_only = pytest.mark.stompkit_only


def single_node(reason):
    """Marks a test the cluster run leaves out, saying why (required)."""
    return pytest.mark.single_node(reason=reason)
