"""core/stream.py PageCache: the bounds of the http-get pages built ahead."""
from __future__ import annotations

import gevent

from evgate.core.stream import PageCache


def _store(cache, key, body, count=1):
    page = cache.begin(key)
    assert page is not None
    cache.finish(key, page, body, count, f"next-{key}")
    return page


def test_a_page_is_taken_once_and_leaves_the_cache():
    cache = PageCache(1000, ttl=5)
    _store(cache, "a", b"x" * 100, count=7)
    assert cache.begin("a") is None            # one build per key
    page = cache.take("a")
    assert page.body == b"x" * 100 and page.count == 7 and page.next_cursor == "next-a"
    assert cache.take("a") is None and cache.bytes == 0
    assert cache.stats()["pages_taken"] == 1


def test_the_byte_bound_drops_the_oldest_pages_first():
    cache = PageCache(250, ttl=5)
    for key in "abc":
        _store(cache, key, b"x" * 100)
    assert list(cache.pages) == ["b", "c"] and cache.bytes == 200
    assert cache.stats()["pages_unused"] == 1
    # a page larger than the whole bound is not kept
    _store(cache, "big", b"x" * 251)
    assert "big" not in cache.pages and cache.bytes == 200


def test_an_incomplete_page_is_not_kept_and_a_waiter_learns_it():
    cache = PageCache(1000, ttl=5)
    page = cache.begin("a")
    taken = cache.take("a")                   # a request came while it was built
    assert taken is page and not taken.ready.is_set()
    assert cache.take("a") is None
    cache.finish("a", page, None)
    assert taken.ready.is_set() and taken.body is None
    assert "a" not in cache.pages and cache.bytes == 0
    assert cache.stats()["pages_built"] == cache.stats()["pages_taken"] == 0
    page = cache.begin("a")
    assert cache.take("a") is page
    cache.finish("a", page, b"late")          # complete after it was taken: counted
    assert page.body == b"late" and cache.bytes == 0
    assert cache.stats()["pages_built"] == cache.stats()["pages_taken"] == 1
    # a long-polling request does not take a page still being built
    page = cache.begin("b")
    assert cache.take("b", ready_only=True) is None
    cache.finish("b", page, b"done")
    assert cache.take("b", ready_only=True).body == b"done"


def test_an_unused_page_is_dropped_after_its_time():
    cache = PageCache(1000, ttl=0.1)
    _store(cache, "a", b"x" * 100)
    gevent.sleep(0.35)
    assert cache.pages == {} and cache.bytes == 0 and cache.stats()["pages_unused"] == 1


def test_off_at_zero_bytes():
    cache = PageCache(0, ttl=5)
    assert not cache.enabled and cache.begin("a") is None
