import pytest
from hypothesis import given, strategies as st

from evgate.kafka import cursor as cursors


def test_encode_is_base64url_of_sorted_pairs():
    position = {("demo", 1): 17, ("demo", 0): 41}
    assert cursors.to_text(position) == "demo@0#41,demo@1#17"
    encoded = cursors.encode(position)
    assert "=" not in encoded and "@" not in encoded
    assert cursors.parse(encoded) == position


def test_plain_form_is_accepted():
    assert cursors.parse("t.a-b_c@3#-1") == {("t.a-b_c", 3): -1}


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "demo@0", "demo@x#1", "demo@0#1,demo@0#2",
                                 "ZGVtbw", "demo@0#-5", "a b@0#1"])
def test_malformed_cursors_raise(bad):
    with pytest.raises(cursors.CursorError):
        cursors.parse(bad)


def test_topics_are_checked():
    with pytest.raises(cursors.CursorError, match="other"):
        cursors.parse("other@0#1", topics=["demo"])


def test_covers():
    assert cursors.covers({("t", 0): 5, ("t", 1): 3}, {("t", 0): 5, ("t", 1): 2})
    assert not cursors.covers({("t", 0): 4}, {("t", 0): 5})
    assert not cursors.covers({("t", 0): 9}, {("t", 1): 0})


@given(st.dictionaries(st.tuples(st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True),
                                 st.integers(0, 999)),
                       st.integers(-1, 2**62), min_size=1, max_size=8))
def test_round_trip(position):
    assert cursors.parse(cursors.encode(position)) == position
    assert cursors.parse(cursors.to_text(position)) == position
