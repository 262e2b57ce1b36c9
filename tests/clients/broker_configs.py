"""kafka-python against the broker resource: it infers Kafka 4.1 from ApiVersions, describes
every broker config (advertised.listeners included, booleans typed BOOLEAN), alters a
dynamic one (IncrementalAlterConfigs) and sees its source become DYNAMIC_BROKER_CONFIG, is
refused a read-only one, and lists config resources. Usage: broker_configs.py BOOTSTRAP"""
import sys

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType


def main(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    version = admin._manager.broker_version_data.broker_version
    assert version >= (4, 1), f"kafka-python inferred {version}"
    broker = ConfigResource(ConfigResourceType.BROKER, "1")
    described = admin.describe_configs([broker], config_filter="all")
    configs = described["broker"]["1"]
    for key in ("advertised.listeners", "listeners", "log.retention.ms", "num.partitions"):
        assert key in configs, f"{key} missing from {sorted(configs)}"
    assert configs["auto.create.topics.enable"]["config_type"] in (1, "BOOLEAN"), configs[
        "auto.create.topics.enable"]

    result = admin.alter_configs(
        [ConfigResource(ConfigResourceType.BROKER, "1", {"log.retention.ms": "3600000"})])
    assert result["broker"]["1"] == "OK", result
    after = admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, "1", ["log.retention.ms"])],
        config_filter="all")["broker"]["1"]["log.retention.ms"]
    assert after["value"] == "3600000", after
    assert after["config_source"] in (2, "DYNAMIC_BROKER_CONFIG"), after

    refused = admin.alter_configs(
        [ConfigResource(ConfigResourceType.BROKER, "1", {"num.partitions": "3"})],
        raise_on_unknown=False)
    assert "InvalidRequest" in refused["broker"]["1"], refused

    listed = admin.list_config_resources()
    assert listed.get("broker") == ["1"], listed
    admin.close()
    print(f"== kafka-python {version}: broker configs described, altered, refused, listed")


if __name__ == "__main__":
    main(sys.argv[1])
