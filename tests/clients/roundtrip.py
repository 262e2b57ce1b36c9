"""One client library's round trip against a broker: create a 3-partition topic, produce
keyed records with acks=all, read every partition back from the beginning, compare with
what was acknowledged. Usage: roundtrip.py kafka-python|confluent-kafka BOOTSTRAP TOPIC [RF]
(RF: the topic's replication factor, default 1; a cluster's bootstrap lists every node)."""
import sys
import time

RECORDS = 2000
PARTITIONS = 3
DEADLINE_S = 60


def expected():
    return {(f"key-{i % 31}".encode(), f"value-{i}".encode()) for i in range(RECORDS)}


def kafka_python(bootstrap, topic, rf):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, rf)])
    # kafka-python 2.1+ turns idempotence on by default (InitProducerId, sequence numbers).
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = [producer.send(topic, key=k, value=v) for k, v in sorted(expected())]
    acked = {}
    for (k, v), f in zip(sorted(expected()), futures):
        md = f.get(timeout=30)
        acked[(md.partition, md.offset)] = (k, v)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen = {}
    deadline = time.time() + DEADLINE_S
    while len(seen) < RECORDS and time.time() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                seen[(tp.partition, m.offset)] = (m.key, m.value)
    consumer.close()
    return acked, seen


def confluent(bootstrap, topic, rf):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, rf)]).values():
        f.result(timeout=30)
    acked = {}

    def on_delivery(err, msg):
        assert err is None, err
        acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for k, v in sorted(expected()):
        producer.produce(topic, key=k, value=v, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen = {}
    deadline = time.time() + DEADLINE_S
    while len(seen) < RECORDS and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        seen[(m.partition(), m.offset())] = (m.key(), m.value())
    consumer.close()
    return acked, seen


def main():
    client, bootstrap, topic = sys.argv[1:4]
    rf = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    run = {"kafka-python": kafka_python, "confluent-kafka": confluent}[client]
    acked, seen = run(bootstrap, topic, rf)
    assert len(acked) == RECORDS, f"{client}: {len(acked)} acknowledged"
    assert set(acked.values()) == expected(), f"{client}: acknowledged records differ"
    assert seen == acked, f"{client}: consumed {len(seen)} records, differing from the {len(acked)} acknowledged"
    print(f"== {client}: {RECORDS} records round trip over {PARTITIONS} partitions of {rf} replicas",
          file=sys.stderr)


if __name__ == "__main__":
    main()
