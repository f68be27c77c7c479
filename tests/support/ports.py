"""Free TCP ports for test servers, chosen BELOW the kernel's ephemeral range.

A port found by binding port 0 comes from the ephemeral range (32768-60999 here), which is
also where every outgoing connection's local port comes from: between "found free" and the
server's own bind, a Kafka client or HTTP client of another test may take it (seen in CI: a
private broker failed with "Address already in use"). Ports below the range are only ever
taken by servers that bind them on purpose.
"""
from __future__ import annotations

import random
import socket


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int = 1, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive ports that are all free now."""
    high = min(_ephemeral_low(), 65535) - count
    for _ in range(500):
        first = random.randrange(20000, high)
        if all(_bindable(host, first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found below {high}")
