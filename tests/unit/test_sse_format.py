import pytest

from evgate.entrypoints.http_get import negotiate
from evgate.entrypoints.sse import encode_control, encode_event
from evgate.errors import BadRequestError
from evgate.core.message import Message


def test_event_frame():
    frame = encode_event(Message(content=b"hello"), "ZGVtb0AwIzM")
    assert frame == b"id: ZGVtb0AwIzM\nevent: message\ndata: hello\n\n"


def test_multiline_content_becomes_data_lines():
    frame = encode_event(Message(content=b"a\nb\r\nc\rd\n"), "1")
    assert frame.endswith(b"data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n")


def test_comments_for_headers_and_metadata():
    message = Message(content=b"x", headers={"h": ["1", "2"]},
                      metadata={"topic": "demo", "key": "k\nk"})
    frame = encode_event(message, "7", headers_as_comment=True, metadata_as_comment=True)
    lines = frame.decode().split("\n")
    assert lines[:6] == ["id: 7", "event: message", ":h: 1", ":h: 2", ":topic: demo", ":key: k k"]


def test_binary_content_is_decoded_with_replacement():
    assert b"data: \xef\xbf\xbd" in encode_event(Message(content=b"\xff"), "1")


def test_control_events():
    assert encode_control("goaway", "bye") == b"event: goaway\ndata: bye\n\n"


@pytest.mark.parametrize("accept,expected", [
    (None, "plain"), ("", "plain"), ("*/*", "json"), ("application/json", "json"),
    ("application/xml", "xml"), ("text/xml", "xml"), ("text/plain", "plain"),
    ("text/html, application/xml;q=0.5, application/json;q=0.9", "json"),
])
def test_http_get_negotiation(accept, expected):
    assert negotiate(accept) == expected


def test_http_get_unsupported_accept():
    with pytest.raises(BadRequestError):
        negotiate("image/png")
