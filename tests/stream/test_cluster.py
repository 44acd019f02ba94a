"""stream/cluster.py: how the stream mode's clients reach the cluster (CONSENTRY_KAFKA_SECURITY
and its login), plaintext only to non-public brokers; and `consentry.raw` kept only
CONSENTRY_KAFKA_RAW_RETENTION_HOURS on a real broker."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from consentry.errors import InvalidSetting
from consentry.governance import endpoints
from consentry.settings import Settings
from consentry.stream import topics
from consentry.stream.cluster import client_config
from tests.stream.conftest import Running


def resolving_to(*answers: str) -> endpoints.Resolver:
    def resolve(host: str, port: int) -> list[endpoints.IPAddress]:
        return [ipaddress.ip_address(a) for a in answers]

    return resolve


def fails(host: str, port: int) -> list[endpoints.IPAddress]:
    raise OSError("no such name")


def test_plaintext_reaches_only_non_public_brokers() -> None:
    local = Settings(kafka_brokers="127.0.0.1:9092,[::1]:9093,10.0.0.7:9092")
    assert client_config(local, fails) == {
        "bootstrap.servers": "127.0.0.1:9092,[::1]:9093,10.0.0.7:9092",
        "security.protocol": "PLAINTEXT",
    }
    named = Settings(kafka_brokers="kafka-1.internal:9092")
    assert client_config(named, resolving_to("10.1.2.3"))["security.protocol"] == "PLAINTEXT"
    # Kafka restarting: a gateway starts all the same (its consents feed only keeps caches
    # fresh); the name is checked at the next start that resolves it.
    assert client_config(named, fails)["security.protocol"] == "PLAINTEXT"
    for brokers, resolver in (
        ("127.0.0.1:9092,8.8.8.8:9092", fails),
        ("[64:ff9b::808:808]:9092", fails),
        ("kafka.example.com:9092", resolving_to("10.1.2.3", "93.184.215.14")),
        ("kafka.example.com", fails),
    ):
        with pytest.raises(InvalidSetting, match="CONSENTRY_KAFKA_BROKERS"):
            client_config(Settings(kafka_brokers=brokers), resolver)
    login = Settings(
        kafka_brokers="8.8.8.8:9092",
        kafka_security="sasl_plaintext",
        kafka_sasl_username="consentry",
        kafka_sasl_password="example-password",
    )
    with pytest.raises(InvalidSetting, match="over TLS only"):
        client_config(login, fails)


def test_tls_and_a_login_reach_any_broker(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(
        kafka_brokers="kafka.example.com:9093",
        kafka_security="sasl_tls",
        kafka_ca_file=str(ca),
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="consentry",
        kafka_sasl_password="example-password",
    )
    assert client_config(settings, fails) == {
        "bootstrap.servers": "kafka.example.com:9093",
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(ca),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "consentry",
        "sasl.password": "example-password",
    }
    tls = dataclasses.replace(settings, kafka_security="tls", kafka_ca_file="")
    assert client_config(tls, fails) == {
        "bootstrap.servers": "kafka.example.com:9093",
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
    }
    with pytest.raises(InvalidSetting, match="CONSENTRY_KAFKA_CA_FILE"):
        client_config(dataclasses.replace(settings, kafka_ca_file=str(tmp_path / "no.pem")))


def test_the_settings_refuse_an_unknown_protocol_or_a_login_half_given() -> None:
    env = {"CONSENTRY_KAFKA_BROKERS": "127.0.0.1:9092"}
    with pytest.raises(InvalidSetting, match="CONSENTRY_KAFKA_SECURITY must be one of"):
        Settings.from_env(env | {"CONSENTRY_KAFKA_SECURITY": "ssl"})
    with pytest.raises(InvalidSetting, match="CONSENTRY_KAFKA_SASL_USERNAME"):
        Settings.from_env(env | {"CONSENTRY_KAFKA_SECURITY": "sasl_tls"})
    with pytest.raises(InvalidSetting, match="CONSENTRY_KAFKA_SASL_MECHANISM"):
        Settings.from_env(
            env
            | {
                "CONSENTRY_KAFKA_SECURITY": "sasl_tls",
                "CONSENTRY_KAFKA_SASL_MECHANISM": "GSSAPI",
                "CONSENTRY_KAFKA_SASL_USERNAME": "consentry",
                "CONSENTRY_KAFKA_SASL_PASSWORD": "example-password",
            }
        )
    shown = {
        name: value
        for name, value, _ in Settings(kafka_sasl_password="example-password").described()
    }
    assert shown["CONSENTRY_KAFKA_SASL_PASSWORD"] != "example-password"


@pytest.mark.kafka
def test_a_replica_keeps_raw_events_only_as_long_as_the_setting_says(
    stream_settings: Settings, replicas: list[Running], kafka_bootstrap: str
) -> None:
    replicas.append(Running(dataclasses.replace(stream_settings, kafka_raw_retention_hours=5)))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.RAW)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["retention.ms"].value == str(5 * 3_600_000)
