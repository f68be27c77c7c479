"""The stream fast paths write to the real socket under gevent's wrapper: on a TLS
connection that would send plaintext, so they are only taken on plain TCP."""
from __future__ import annotations

import socket

from gevent import socket as gsocket
from gevent import ssl

from evgate.entrypoints.detached import HANDOVER_KEY, can_hand_over
from evgate.entrypoints.streaming import is_plain_tcp


def test_a_tls_socket_is_not_plain_tcp_and_is_never_handed_over():
    a, b = gsocket.socketpair()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)   # gevent's, as in a gevent worker
    wrapped = tls.wrap_socket(a, server_side=True, do_handshake_on_connect=False)
    try:
        assert hasattr(wrapped, "_sock")  # what the fast paths would write to: no TLS
        assert not is_plain_tcp(wrapped)
        assert not can_hand_over({HANDOVER_KEY: True}, wrapped)
        assert is_plain_tcp(b) and is_plain_tcp(socket.socket())
        assert can_hand_over({HANDOVER_KEY: True}, b)
        assert not is_plain_tcp(None)
    finally:
        wrapped.close()
        b.close()
