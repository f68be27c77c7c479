"""Request smuggling and slowloris, as an attacker does it: raw sockets against a real gunicorn
gateway, on every worker class evgate supports (evgate/workers.py).

Each attack carries a second, smuggled request behind the first (a POST to an http-post
entrypoint): the gateway must answer the attack 400 (501 for a transfer coding it does not
implement) with a JSON body and `Connection: close`, close the connection, never answer the
smuggled request, and nothing of either may reach Kafka.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest

from tests.support.gateway import GatewayProcess, import_apis
from tests.support.kafka_broker import consume_all, create_topic
from tests.support.streams import SseClient, stream_api

pytestmark = pytest.mark.integration

WORKER_CLASSES = ["gevent_pywsgi", "gevent"]


def ingestion_api(path: str, topic: str) -> dict:
    return {
        "id": str(uuid.uuid4()), "name": f"ingestion {path}", "definitionVersion": "4.0.0",
        "type": "async",
        "listeners": [{"type": "http", "paths": [{"path": path}],
                       "entrypoints": [{"type": "http-post", "configuration": {}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka", "endpoints": [
            {"name": "default", "type": "kafka",
             "configuration": {"topics": [topic], "producer": {"enabled": True},
                               "consumer": {"enabled": False}}}]}],
        "plans": [{"name": "Keyless", "security": {"type": "key-less"},
                   "status": "published"}],
    }


MOCK_STREAM = stream_api("/ticks", [{"type": "sse", "configuration": {
    "heartbeatIntervalInMs": 200}}], {"messageInterval": 200, "messageContent": "tick",
                                      "messageCount": 1000}, endpoint_type="mock")


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def gateway(request, kafka_bootstrap, tmp_path_factory):
    """One gateway per worker class: /in publishes to its own topic; a 2 s head timeout."""
    topic = f"test-framing-{uuid.uuid4().hex[:10]}"
    create_topic(kafka_bootstrap, topic)
    tmp = tmp_path_factory.mktemp(request.param)
    database_url = f"sqlite:///{tmp}/evgate.db"
    import_apis(database_url, [ingestion_api("/in", topic), MOCK_STREAM])
    gw = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap, workers=1,
                        worker_class=request.param, log_path=tmp / "gw.log",
                        env={"EVGATE_HEADER_TIMEOUT": "2"})
    gw.topic = topic
    gw.worker_class = request.param
    with gw:
        yield gw


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send `data`, read until the server closes (True) or `timeout` passes (False)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


def smuggled(case: str) -> bytes:
    payload = f"smuggled-{case}".encode()
    return (b"POST /in HTTP/1.1\r\nHost: evgate\r\nContent-Length: %d\r\n\r\n%s"
            % (len(payload), payload))


def post_head(*lines: str, version: str = "HTTP/1.1") -> bytes:
    return (f"POST /in {version}\r\nHost: evgate\r\n" + "".join(f"{line}\r\n" for line in lines)
            + "\r\n").encode("latin-1")


CHUNKED = "Transfer-Encoding: chunked"
# case -> (bytes before the smuggled request, expected status)
ATTACKS = {
    "two_content_lengths": (post_head("Content-Length: 6", "Content-Length: 60") + b"attack", 400),
    "identical_content_lengths": (post_head("Content-Length: 6", "Content-Length: 6")
                                  + b"attack", 400),
    "content_length_list": (post_head("Content-Length: 6, 6") + b"attack", 400),
    "content_length_and_chunked": (post_head("Content-Length: 11", CHUNKED)
                                   + b"6\r\nattack\r\n0\r\n\r\n", 400),
    "transfer_encoding_xchunked": (post_head("Transfer-Encoding: xchunked")
                                   + b"6\r\nattack\r\n0\r\n\r\n", 501),
    "transfer_encoding_gzip_chunked": (post_head("Transfer-Encoding: gzip, chunked")
                                       + b"6\r\nattack\r\n0\r\n\r\n", 501),
    "chunked_twice": (post_head("Transfer-Encoding: chunked, chunked")
                      + b"6\r\nattack\r\n0\r\n\r\n", 400),
    "chunked_on_http_1_0": (post_head(CHUNKED, version="HTTP/1.0")
                            + b"6\r\nattack\r\n0\r\n\r\n", 400),
    "bad_chunk_size": (post_head(CHUNKED) + b"zz\r\nattack\r\n0\r\n\r\n", 400),
    "negative_chunk_size": (post_head(CHUNKED) + b"-6\r\nattack\r\n0\r\n\r\n", 400),
    "bad_chunk_extension": (post_head(CHUNKED) + b"6;a b\r\nattack\r\n0\r\n\r\n", 400),
    "chunk_without_crlf": (post_head(CHUNKED) + b"6\r\nattackXY0\r\n\r\n", 400),
    "chunk_size_bare_lf": (post_head(CHUNKED) + b"6\nattack\r\n0\r\n\r\n", 400),
    "content_length_in_trailer": (post_head(CHUNKED)
                                  + b"6\r\nattack\r\n0\r\nContent-Length: 5\r\n\r\n", 400),
    "content_length_plus": (post_head("Content-Length: +6") + b"attack", 400),
    "content_length_negative": (post_head("Content-Length: -6") + b"attack", 400),
    "content_length_inner_space": (post_head("Content-Length: 6 0") + b"attack", 400),
    "content_length_hex": (post_head("Content-Length: 0x6") + b"attack", 400),
    "content_length_huge": (post_head("Content-Length: 99999999999999999999") + b"attack", 400),
    "obs_fold": (post_head("X-Folded: a", " b", "Content-Length: 6") + b"attack", 400),
    "space_before_colon": (post_head("Content-Length : 6") + b"attack", 400),
    "bare_lf_in_head": (b"POST /in HTTP/1.1\r\nHost: evgate\nContent-Length: 6\r\n\r\nattack",
                        400),
    "bare_cr_in_head": (b"POST /in HTTP/1.1\r\nHost: evgate\rContent-Length: 6\r\n\r\nattack",
                        400),
    "bare_lf_request_line": (b"POST /in HTTP/1.1\nHost: evgate\r\nContent-Length: 6\r\n\r\n"
                             b"attack", 400),
}


@pytest.mark.parametrize("case", list(ATTACKS))
def test_attack_is_refused_and_the_connection_closed(gateway, case):
    attack, expected = ATTACKS[case]
    raw, closed = exchange(gateway.port, attack + smuggled(case))
    assert raw.startswith(b"HTTP/1.1 "), raw
    status, headers, body = parse_response(raw)
    assert status == expected, raw
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert error["http_status_code"] == expected and error["message"]
    assert "Traceback" not in raw.decode("latin-1")
    assert body == raw[-len(body):] and len(body) == int(headers["content-length"]), \
        "something follows the answer: the smuggled request was answered"
    assert closed, "the server kept the connection open"


def test_malformed_body_left_unread_gets_no_second_answer(gateway):
    """The application answers without reading the body (404): the malformed rest ends the
    connection silently; a second response would desynchronise a proxy's response queue."""
    attack = (b"GET /nowhere HTTP/1.1\r\nHost: evgate\r\n" + CHUNKED.encode() + b"\r\n\r\n"
              b"zz\r\nattack\r\n0\r\n\r\n" + smuggled("unread_body"))
    raw, closed = exchange(gateway.port, attack)
    status, headers, body = parse_response(raw)
    assert status == 404
    assert len(body) == int(headers["content-length"]), raw
    assert closed


def test_good_chunked_post_and_keep_alive(gateway):
    body = (b"3;name=value\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Checksum: ok\r\n\r\n")
    request = post_head(CHUNKED) + body
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(request)
        first = read_responses(sock, 1)
        sock.sendall(post_head("Content-Length: 8") + b"second-1")   # same connection
        second = read_responses(sock, 1)
    assert [status for status, _ in first + second] == [202, 202]
    assert all(headers.get("connection") != "close" for _, headers in first + second)


def test_keep_alive_pipeline_of_two_requests(gateway):
    pipeline = (post_head("Content-Length: 6") + b"pipe-1"
                + post_head(CHUNKED) + b"6\r\npipe-2\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(pipeline)
        responses = read_responses(sock, 2)
    assert [status for status, _ in responses] == [202, 202]


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str]]]:
    """`count` bodiless responses (202) read off a keep-alive connection."""
    buffer = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses: {buffer!r}"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        status, headers, _ = parse_response(head + b"\r\n\r\n")
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        out.append((status, headers))
    return out


def test_idle_keep_alive_outlives_the_head_timeout(gateway):
    """The head timeout (2 s here) does not close an idle keep-alive connection: that waits
    for gunicorn's keepalive (75 s), longer than a load balancer's idle timeout."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(post_head("Content-Length: 6") + b"idle-1")
        assert read_responses(sock, 1)[0][0] == 202
        time.sleep(3.5)
        sock.sendall(post_head("Content-Length: 6") + b"idle-2")
        assert read_responses(sock, 1)[0][0] == 202


def test_every_request_of_a_keep_alive_connection_has_the_head_timeout(gateway):
    """The head timer is one per connection, armed again for each request: the third
    request's head, begun and never finished, is cut after the head timeout (2 s) like the
    first one's would be, and the requests before it were not cut by an earlier arming."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        for index in range(2):
            sock.sendall(post_head("Content-Length: 6") + b"keep-%d" % index)
            assert read_responses(sock, 1)[0][0] == 202
            time.sleep(1.2)            # together more than the head timeout: not one clock
        started = time.monotonic()
        sock.sendall(b"POST /in HTTP/1.1\r\nHost: evgate\r\n")    # never ends
        assert sock.recv(65536) == b""                              # closed by the server
        waited = time.monotonic() - started
    assert 1.5 <= waited < 8, waited


def test_a_stream_is_not_cut_by_the_head_timeout(gateway):
    client = SseClient(gateway.url, "/ticks", timeout=10)
    try:
        assert client.status == 200
        client.events(1)
        time.sleep(4.5)                     # more than twice the head timeout
        assert client.events(3, deadline=5)[-1]["data"] == "tick"
    finally:
        client.close()


def test_slowloris_connections_are_closed_while_requests_are_served(gateway):
    """200 connections that trickle a head that never ends are all closed after the head
    timeout (2 s), however often they send a byte; a normal request is served meanwhile."""
    started = time.monotonic()
    sockets = []
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
        sock.sendall(b"GET /in HTTP/1.1\r\nHost: evgate\r\n")
        sock.setblocking(False)
        sockets.append(sock)
    closed_at: dict[int, float] = {}
    served: list[float] = []

    def normal_request():
        t0 = time.monotonic()
        status, _, _ = gateway.request("GET", "/nowhere", timeout=5)
        assert status == 404
        served.append(time.monotonic() - t0)

    try:
        checker = threading.Thread(target=normal_request)
        checker.start()
        deadline = started + 8
        while len(closed_at) < len(sockets) and time.monotonic() < deadline:
            for index, sock in enumerate(sockets):
                if index in closed_at:
                    continue
                try:
                    sock.send(b"X-Drip: 1\r\n")   # one more header line: still no end
                    if sock.recv(65536) == b"":
                        closed_at[index] = time.monotonic() - started
                except BlockingIOError:
                    pass
                except OSError:   # reset or broken pipe: closed by the server
                    closed_at[index] = time.monotonic() - started
            time.sleep(0.25)
        checker.join(10)
    finally:
        for sock in sockets:
            sock.close()
    assert len(closed_at) == len(sockets), f"{len(sockets) - len(closed_at)} still open"
    assert min(closed_at.values()) >= 1.5      # the timeout, not a refusal at connect
    assert served and served[0] < 1.5          # served while the 200 were hanging on


def test_nothing_of_the_attacks_reached_kafka(gateway, kafka_bootstrap):
    """Runs after the tests above (same module-scoped gateway): only the good requests'
    records are in the topic."""
    good = {b"abcdefg", b"second-1", b"pipe-1", b"pipe-2", b"idle-1", b"idle-2", b"keep-0",
            b"keep-1"}
    records = consume_all(kafka_bootstrap, gateway.topic, len(good) + 1, timeout=6)
    values = {record.value() for record in records}
    assert values == good


@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_management_server_has_the_same_framing(kafka_bootstrap, database_url, tmp_path,
                                                worker_class):
    """The management API runs on the same worker classes (evgate/gunicorn_settings.py)."""
    import base64
    password = "adm1n-" + uuid.uuid4().hex[:10]
    auth = base64.b64encode(f"admin:{password}".encode()).decode()
    management = GatewayProcess(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                                workers=1, app="wsgi:management", worker_class=worker_class,
                                env={"EVGATE_ADMIN_PASSWORD": password,
                                     "EVGATE_HEADER_TIMEOUT": "2"},
                                log_path=tmp_path / "management.log")
    path = "/management/organizations/DEFAULT/environments/DEFAULT/v4/apis"
    with management:
        head_attack = (f"POST {path} HTTP/1.1\r\nHost: evgate\r\nAuthorization: Basic {auth}\r\n"
                       "Content-Type: application/json\r\nContent-Length: 2\r\n"
                       "Content-Length: 40\r\n\r\n{}").encode()
        body_attack = (f"POST {path} HTTP/1.1\r\nHost: evgate\r\nAuthorization: Basic {auth}\r\n"
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "2\r\n{}\r\nzz\r\n0\r\n\r\n").encode()
        for attack in (head_attack, body_attack):
            raw, closed = exchange(management.port, attack + smuggled("management"))
            status, headers, body = parse_response(raw)
            assert status == 400, raw
            assert headers["connection"] == "close"
            assert len(body) == int(headers["content-length"]) and json.loads(body)["message"]
            assert closed
        started = time.monotonic()
        raw, closed = exchange(management.port, f"GET {path} HTTP/1.1\r\n".encode(), 6)
        assert closed and raw == b"" and 1.5 <= time.monotonic() - started < 5
    assert "Traceback" not in management.log_path.read_text()
