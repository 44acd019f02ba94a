"""The stream cluster (CONSENTRY_KAFKA_*): the connection settings every stream client shares
(the replica's producer and consumer, the consents feed and its folder, the topic admin), and
the rule that plaintext reaches no public address, as for deliveries (governance/endpoints)."""

from __future__ import annotations

import logging

from consentry.errors import InvalidSetting
from consentry.governance import endpoints
from consentry.settings import Settings
from consentry.settings.rules import KAFKA_SECURITY

log = logging.getLogger(__name__)

# librdkafka's configuration of a client, as confluent-kafka takes it.
Config = dict[str, str | int | float | bool]


def client_config(settings: Settings, resolver: endpoints.Resolver = endpoints.resolve) -> Config:
    """librdkafka's connection settings for the stream cluster; InvalidSetting when it would be
    reached in plaintext at an address that may be public (a name that does not resolve now
    is let through, with a warning), or its CA file cannot be read."""
    protocol, tls = KAFKA_SECURITY[settings.kafka_security]
    brokers = settings.kafka_brokers
    if not tls:
        _check_plaintext(brokers, resolver)
    config: Config = {"bootstrap.servers": brokers, "security.protocol": protocol}
    if tls:
        # Each broker's certificate must name the host it is reached by.
        config["ssl.endpoint.identification.algorithm"] = "https"
        if settings.kafka_ca_file:
            try:
                with open(settings.kafka_ca_file, "rb"):
                    pass
            except OSError:
                raise InvalidSetting("CONSENTRY_KAFKA_CA_FILE cannot be read") from None
            config["ssl.ca.location"] = settings.kafka_ca_file
    if settings.kafka_security.startswith("sasl"):
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password
    return config


def _check_plaintext(brokers: str, resolver: endpoints.Resolver) -> None:
    for broker in filter(None, (b.strip() for b in brokers.split(","))):
        host, _, port = broker.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise InvalidSetting("CONSENTRY_KAFKA_BROKERS must be host:port,host:port")
        found = endpoints.resolved(host, int(port), resolver)
        if found is None:
            # Kafka may be restarting: a gateway must not stop for it (the consents feed only
            # keeps caches fresh). A name is checked when it resolves at a start; librdkafka
            # resolves it again later, which this check does not see (docs/stream.md).
            log.warning("CONSENTRY_KAFKA_BROKERS: a broker name does not resolve now")
            continue
        if not endpoints.plaintext_allowed(found):
            raise InvalidSetting(
                f"CONSENTRY_KAFKA_BROKERS: {host!r} is, or resolves to, an address that may be "
                "public: the stream cluster is reached there over TLS only "
                "(CONSENTRY_KAFKA_SECURITY=tls or sasl_tls)"
            )
