"""The two tags of the interop suite (see pytest.ini and conftest.py).

`portable`: the STOMP specifications (or behaviour every mainstream broker
shares, such as RabbitMQ's) require it; never asserts stompkit's own header
values or error texts, so a later relay issue runs these against RabbitMQ.
`stompkit_only`: pins stompkit-broker's own choices.
"""

import pytest

portable = pytest.mark.portable
stompkit_only = pytest.mark.stompkit_only
