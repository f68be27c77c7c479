"""message-filtering: tables of filters and messages, double evaluation, errors."""
from __future__ import annotations

import pytest

from evgate.definition import parse_definition
from evgate.errors import DefinitionError
from evgate.policies.message_filtering import MessageFilteringPolicy

from .policy_helpers import context, definition, deploy, message, only_policy, step, steps

SEED = "{#jsonPath(#message.content, '$.feature') == #subscription.metadata.feature}"


def run(configuration, contents, subscription=None, phase="subscribe"):
    api = deploy([steps(phase, step("message-filtering", **configuration))])
    ctx = context(api, subscription=subscription)
    messages = [message(c) for c in contents]
    runner = api.subscribe_messages if phase == "subscribe" else api.publish_messages
    kept = runner(messages, ctx)
    return [messages.index(m) for m in kept], only_policy(api, phase)


def test_seed_filter_per_subscription():
    contents = [{"feature": "demo"}, {"feature": "demo2"}, {"other": 1}, b"not json",
                {"feature": "demo"}]
    kept, policy = run({"filter": SEED}, contents, {"id": "s1", "metadata": {"feature": "demo"}})
    assert kept == [0, 4]
    assert policy.errors == 1          # only the non-JSON record failed
    kept, _ = run({"filter": SEED}, contents, {"id": "s2", "metadata": {"feature": "demo2"}})
    assert kept == [1]


@pytest.mark.parametrize("filter_,contents,expected", [
    ("{true}", [b"a", b"b"], [0, 1]),
    ("{false}", [b"a", b"b"], []),
    ("{#message.content == 'b'}", [b"a", b"b"], [1]),
    ("{#jsonPath(#message.content, '$.n') > 2}", [{"n": 1}, {"n": 3}], [1]),
    ("{#message.headers['x']?.[0] == 'y'}", [b"a"], []),
    ("{'true'}", [b"a"], [0]),                    # the text "true" is a boolean
    ("{#message.content.toString()}", [b"TRUE", b"false"], [0]),   # text true/false
    ("{#message.content}", [b"true"], []),        # bytes are not a boolean
    ("{42}", [b"a"], []),                          # not a boolean: error -> dropped
])
def test_filter_table(filter_, contents, expected):
    assert run({"filter": filter_}, contents)[0] == expected


def test_publish_phase_filters_too():
    assert run({"filter": "{#message.content != 'skip'}"}, [b"skip", b"go"],
               phase="publish")[0] == [1]


def test_keep_on_error_when_configured():
    kept, policy = run({"filter": SEED, "filterMessageOnFilteringError": False},
                       [b"not json", {"feature": "x"}], {"id": "s", "metadata": {"feature": "y"}})
    assert kept == [0]
    assert policy.errors == 1


def test_string_result_is_evaluated_once_as_the_filter():
    inner = "{#jsonPath(#message.content, '$.feature') == 'demo'}"
    subscription = {"id": "s", "metadata": {"filter": inner}}
    kept, policy = run({"filter": "{#subscription.metadata.filter}"},
                       [{"feature": "demo"}, {"feature": "x"}], subscription)
    assert kept == [0] and policy.errors == 0


def test_double_evaluation_stops_after_one_level():
    # the inner filter yields a string again: an error, not a third evaluation
    subscription = {"id": "s", "metadata": {"filter": "{#subscription.metadata.again}",
                                            "again": "{true}"}}
    kept, policy = run({"filter": "{#subscription.metadata.filter}"}, [b"a"], subscription)
    assert kept == [] and policy.errors == 1


def test_inner_filter_syntax_error_counts_per_message():
    subscription = {"id": "s", "metadata": {"filter": "{#a ==}"}}
    kept, policy = run({"filter": "{#subscription.metadata.filter}"}, [b"a", b"b"],
                       subscription)
    assert kept == [] and policy.errors == 2


def test_string_result_from_a_message_filter_is_evaluated():
    api = deploy([steps("subscribe", step("message-filtering",
                                          filter="{#message.headers['f'][0]}"))])
    messages = [message(b"a", headers={"f": ["{#message.content == 'a'}"]}),
                message(b"b", headers={"f": ["{#message.content == 'a'}"]})]
    assert [m.content for m in api.subscribe_messages(messages, context(api))] == [b"a"]


def test_errors_are_logged_once_per_burst(caplog):
    kept, policy = run({"filter": SEED}, [b"x"] * 50, {"id": "s", "metadata": {}})
    assert kept == [] and policy.errors == 50
    lines = [r for r in caplog.records if "message-filtering" in r.getMessage()]
    assert len(lines) == 1


@pytest.mark.parametrize("configuration,path,fragment", [
    ({"filter": "{#message.content == )}"}, ".filter", "unexpected token ')' at position 21"),
    ({}, ".filter", "required"),
    ({"filter": 3}, ".filter", "string"),
    ({"filter": "{true}", "filterMessageOnFilteringError": "no"},
     ".filterMessageOnFilteringError", "true or false"),
])
def test_validation(configuration, path, fragment):
    found = dict(MessageFilteringPolicy.validate_configuration(configuration, None))
    assert fragment in found[path]
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition([steps("subscribe", step("message-filtering",
                                                             **configuration))]))
    paths = [p["path"] for p in info.value.problems]
    assert f"$.flows[0].subscribe[0].configuration{path}" in paths
