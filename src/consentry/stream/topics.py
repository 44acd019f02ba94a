"""The stream mode's topics (API.md, Stream mode): their names, and their creation with the
configuration each needs (compaction for the consents topic, a bounded retention for the
consented topics)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.cimpl import NewTopic

from consentry.governance import consented as consented_topics
from consentry.stream.cluster import Config

log = logging.getLogger(__name__)

RAW = "consentry.raw"
REFUSED = "consentry.refused"
CONSENTS = "consentry.consents"
CONSENTED_PREFIX = consented_topics.PREFIX
_HOUR_MS = 3_600_000
_TIMEOUT = 30.0


# The names and the retention of the consented topics have their home in the data map's
# governance/consented.py (requests wait for that retention).
consented = consented_topics.topic


def raw_config(hours: int) -> dict[str, str]:
    """`consentry.raw`'s configuration: its records hold personal data in clear, which no
    erasure reaches there, so they are kept CONSENTRY_KAFKA_RAW_RETENTION_HOURS only."""
    return {"retention.ms": str(hours * _HOUR_MS)}


class Topics:
    """Creates the topics the stream mode writes; a topic that exists keeps its partitions,
    and gets the configuration it must have. Each topic's configuration is applied once per
    process, and again when it changes or after `forget` (the configuration version moved)."""

    def __init__(self, cluster: Config) -> None:
        self._admin = AdminClient(cluster)
        # The configuration this process last applied to each topic.
        self._applied: dict[str, dict[str, str]] = {}

    def applied(self, name: str) -> dict[str, str] | None:
        """The configuration this process applied to the topic (None: not yet)."""
        return self._applied.get(name)

    def forget(self, prefix: str) -> None:
        """Apply the configuration of the topics named `prefix`... again when next ensured."""
        for name in [n for n in self._applied if n.startswith(prefix)]:
            del self._applied[name]

    def ensure(self, wanted: Mapping[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        """Each topic of `wanted` (name -> configuration) exists with that configuration.
        Returns, of the topics that existed, the configuration each had before (of the keys
        set), so a caller can tell a retention made longer."""
        missing = {
            name: config for name, config in wanted.items() if self._applied.get(name) != config
        }
        if not missing:
            return {}
        futures = self._admin.create_topics(
            [NewTopic(name, config=config) for name, config in missing.items()],
            request_timeout=_TIMEOUT,
        )
        existing = []
        for name, future in futures.items():
            try:
                future.result(_TIMEOUT)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                existing.append(name)
        configured = [name for name in existing if missing[name]]
        before: dict[str, dict[str, str]] = {}
        if configured:
            before = self._current(configured, missing)
            resources = [
                ConfigResource(
                    ConfigResource.Type.TOPIC,
                    name,
                    incremental_configs=[
                        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                        for key, value in missing[name].items()
                    ],
                )
                for name in configured
            ]
            for future in self._admin.incremental_alter_configs(resources).values():
                future.result(_TIMEOUT)
        self._applied.update(missing)
        log.info("stream topics ready: %s", ", ".join(sorted(missing)))
        return before

    def _current(
        self, names: Sequence[str], wanted: Mapping[str, dict[str, str]]
    ) -> dict[str, dict[str, str]]:
        """The broker's values, for each topic of `names`, of the keys `wanted` sets."""
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
        out: dict[str, dict[str, str]] = {}
        for resource, future in self._admin.describe_configs(resources).items():
            entries = future.result(_TIMEOUT)
            keys = wanted[resource.name]
            out[resource.name] = {
                k: str(e.value) for k, e in entries.items() if k in keys and e.value is not None
            }
        return out


def consents_config() -> dict[str, str]:
    """The consents topic is compacted: the latest record of each subject stays."""
    return {"cleanup.policy": "compact"}
