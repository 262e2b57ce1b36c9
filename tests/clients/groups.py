"""kafka-python's KafkaConsumer(group_id=...) against a broker: joins a group, consumes a
3-partition topic, commits; a second consumer in the same group resumes after the commit;
the admin client lists and describes the group. Usage: groups.py BOOTSTRAP TOPIC"""
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

RECORDS = 600
PARTITIONS = 3
DEADLINE_S = 60
GROUP = "py-group"


def consume(bootstrap, topic, count):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=GROUP,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    seen = []
    deadline = time.time() + DEADLINE_S
    while len(seen) < count and time.time() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500, max_records=count - len(seen)).items():
            seen.extend((tp.partition, m.offset) for m in msgs)
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    consumer.close()
    return seen, committed


def main(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(RECORDS):
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % PARTITIONS)
    producer.flush()
    producer.close()

    first, committed = consume(bootstrap, topic, RECORDS // 2)
    assert len(first) >= RECORDS // 2, f"first consumer read {len(first)}"
    assert sum(committed.values()) == len(first), f"committed {committed} after {len(first)}"
    second, _ = consume(bootstrap, topic, RECORDS - len(first))
    both = first + second
    assert len(both) == RECORDS and len(set(both)) == RECORDS, \
        f"{len(both)} records, {len(set(both))} distinct: skipped or repeated after the commit"

    # kafka-python 2.x names these *_consumer_group*; 3.x renamed them.
    listed = (getattr(admin, "list_consumer_groups", None) or admin.list_groups)()
    assert GROUP in repr(listed), f"list groups: {listed}"
    described = (getattr(admin, "describe_consumer_groups", None) or admin.describe_groups)([GROUP])
    assert "Empty" in repr(described), described
    offsets = (getattr(admin, "list_consumer_group_offsets", None) or admin.list_group_offsets)(GROUP)
    if isinstance(offsets, dict) and GROUP in offsets:
        offsets = offsets[GROUP]
    assert sum(o.offset for o in offsets.values()) == RECORDS, offsets
    print(f"kafka-python group: {RECORDS} records over two consumers, commits resumed, group listed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
