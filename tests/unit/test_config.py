from pathlib import Path

import pytest

from evgate.config import SETTINGS, Config, render_markdown
from evgate.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_environment():
    config = Config.from_env({})
    assert config.kafka_bootstrap == "127.0.0.1:9092"
    assert config.gateway_bind == "127.0.0.1:8082"
    assert config.management_bind == "127.0.0.1:8083"
    assert config.database_url.startswith("sqlite:///")
    assert config.max_message_size == 1048576
    assert config.produce_timeout_ms == 5000


@pytest.mark.parametrize("env,name,expected", [
    ({"EVGATE_KAFKA_BOOTSTRAP": "k1:9092,k2:9092"}, "kafka_bootstrap", "k1:9092,k2:9092"),
    ({"EVGATE_WORKERS": "3"}, "workers", 3),
    ({"EVGATE_MAX_MESSAGE_SIZE": "2048"}, "max_message_size", 2048),
    ({"EVGATE_LOG_FORMAT": "JSON"}, "log_format", "json"),
    ({"EVGATE_WORKER_CLASS": "gevent"}, "worker_class", "gevent"),
    ({}, "kafka_producer_compression", "lz4"),
    ({"EVGATE_KAFKA_PRODUCER_COMPRESSION": "none"}, "kafka_producer_compression", "none"),
])
def test_environment_overrides(env, name, expected):
    assert getattr(Config.from_env(env), name) == expected


@pytest.mark.parametrize("env,needle", [
    ({"EVGATE_WORKERS": "many"}, "EVGATE_WORKERS"),
    ({"EVGATE_MAX_MESSAGE_SIZE": "0"}, "EVGATE_MAX_MESSAGE_SIZE"),
    ({"EVGATE_GATEWAY_BIND": "8082"}, "HOST:PORT"),
    ({"EVGATE_LOG_FORMAT": "xml"}, "plain, json"),
    ({"EVGATE_KAFKA_PRODUCER_COMPRESSION": "brotli"}, "EVGATE_KAFKA_PRODUCER_COMPRESSION"),
])
def test_bad_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError, match=needle):
        Config.from_env(env)


def test_every_setting_has_env_name_and_description():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.env == "EVGATE_" + setting.name.upper()
        assert setting.description.endswith(".")


def test_secrets_are_masked():
    config = Config.from_env({"EVGATE_DATABASE_URL": "postgresql://u:pw@h/db"})
    assert "pw" not in repr(config)
    assert config.as_dict()["database_url"] == "****"


def test_configuration_doc_matches_the_code():
    """docs/configuration.md is generated (`make docs`); regenerate it when settings change."""
    assert (ROOT / "docs" / "configuration.md").read_text() == render_markdown()


@pytest.mark.parametrize("env, expected", [({}, "lz4"),
                                           ({"EVGATE_KAFKA_PRODUCER_COMPRESSION": "none"}, "none")])
def test_the_producer_compression_setting_reaches_librdkafka(env, expected):
    from evgate.kafka.client_config import producer_config
    conf = producer_config({"bootstrapServers": "k:9092"}, Config.from_env(env))
    assert conf["compression.type"] == expected
    assert conf["acks"] == "all" and conf["enable.idempotence"] is True
