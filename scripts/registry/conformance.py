#!/usr/bin/env python3
"""Holds a schema registry to the Confluent protocol, using only Confluent's own Python client.

Usage: conformance.py URL [--basic-auth USER:PASSWORD] [--bearer TOKEN]

Against URL: registering (ids, idempotence), fetching by id, subject and version, lookup, Avro
references, the error codes of missing schemas/subjects/versions, and round trips through the
client's Avro, Protobuf and JSON Schema serializers and deserializers (the deserializers use a
fresh client, so they fetch the writer schema from the registry). With --basic-auth or --bearer it
also starts a second test registry (scripts/registry/server.py) on a free port that requires those
credentials, checks that a client with them works and one without gets 401, and stops it.

Subjects carry a per-run prefix, so the check can run against a registry that other tests use.
Any mismatch: a message on stderr and exit status 1. Success: one summary line on stdout.
"""

import argparse
import json
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVER = Path(__file__).resolve().parent / "server.py"

checked = []


class Mismatch(Exception):
    pass


def check(name, condition, detail=""):
    if not condition:
        raise Mismatch(f"{name}: {detail}" if detail else name)
    checked.append(name)


def equal(name, actual, expected):
    check(name, actual == expected, f"expected {expected!r}, got {actual!r}")


def raises(name, call, status, error_code):
    try:
        result = call()
    except SchemaRegistryError as e:
        equal(f"{name} (HTTP status)", e.http_status_code, status)
        equal(f"{name} (error_code)", e.error_code, error_code)
        checked.append(name)
        return
    raise Mismatch(f"{name}: expected SchemaRegistryError {status}/{error_code}, got {result!r}")


def framed_id(data):
    """The schema id of a Confluent-framed value: magic byte 0, then a 4-byte big-endian id."""
    check("framing: magic byte 0x00", len(data) >= 5 and data[0] == 0, f"value {data[:8].hex()}")
    return struct.unpack(">I", data[1:5])[0]


MONEY = json.dumps(
    {
        "type": "record",
        "name": "Money",
        "namespace": "com.example",
        "fields": [{"name": "amount_cents", "type": "long"}, {"name": "currency", "type": "string"}],
    }
)
ORDER_WITH_MONEY = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "com.example",
        "fields": [{"name": "id", "type": "string"}, {"name": "total", "type": "com.example.Money"}],
    }
)
ORDER_AVRO = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "com.example.conformance",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "quantity", "type": "int"},
            {"name": "amount_cents", "type": "long"},
            {"name": "weight_kg", "type": "double"},
            {"name": "paid", "type": "boolean"},
            {"name": "coupon", "type": ["null", "string"], "default": None},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    }
)
ORDER_JSON_SCHEMA = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "quantity": {"type": "integer"},
            "paid": {"type": "boolean"},
        },
        "required": ["id", "quantity"],
    }
)


def client_api(url, prefix):
    client = SchemaRegistryClient({"url": url})
    subject = f"{prefix}money-value"
    money = Schema(MONEY, "AVRO")
    money_id = client.register_schema(subject, money)
    check("register_schema returns an id", isinstance(money_id, int) and money_id > 0, repr(money_id))
    # A fresh client has no cache: the second registration really asks the registry.
    again = SchemaRegistryClient({"url": url}).register_schema(subject, Schema(MONEY, "AVRO"))
    equal("registering the same schema again returns the same id", again, money_id)
    other_subject = SchemaRegistryClient({"url": url}).register_schema(f"{prefix}money-copy-value", money)
    equal("the same schema under another subject has the same id", other_subject, money_id)

    fresh = SchemaRegistryClient({"url": url})
    fetched = fresh.get_schema(money_id)
    equal("get_schema: schema text", fetched.schema_str, MONEY)
    equal("get_schema: schema type", fetched.schema_type, "AVRO")
    equal("get_schema: no references", list(fetched.references or []), [])

    latest = fresh.get_latest_version(subject)
    equal("get_latest_version: id", latest.schema_id, money_id)
    equal("get_latest_version: version", latest.version, 1)
    equal("get_latest_version: subject", latest.subject, subject)
    equal("get_latest_version: schema", latest.schema.schema_str, MONEY)
    v1 = fresh.get_version(subject, 1)
    equal("get_version(subject, 1): id", v1.schema_id, money_id)
    equal("get_version(subject, 1): version", v1.version, 1)
    check("get_subjects lists the subject", subject in fresh.get_subjects(), repr(fresh.get_subjects()))
    equal("get_versions", fresh.get_versions(subject), [1])
    found = SchemaRegistryClient({"url": url}).lookup_schema(subject, Schema(MONEY, "AVRO"))
    equal("lookup_schema: id", found.schema_id, money_id)
    equal("lookup_schema: version", found.version, 1)
    versions = fresh.get_schema_versions(money_id)
    pairs = {(v.subject, v.version) for v in versions}
    check("get_schema_versions lists the subject/version", (subject, 1) in pairs, repr(pairs))

    # A schema referencing another by name, registered with the reference.
    refs = [SchemaReference("com.example.Money", subject, 1)]
    order_subject = f"{prefix}order-value"
    order_id = client.register_schema(order_subject, Schema(ORDER_WITH_MONEY, "AVRO", refs))
    check("a schema with references gets its own id", order_id not in (None, money_id), repr(order_id))
    back = SchemaRegistryClient({"url": url}).get_schema(order_id)
    equal("get_schema with references: text", back.schema_str, ORDER_WITH_MONEY)
    equal(
        "get_schema with references: references",
        [(r.name, r.subject, r.version) for r in back.references],
        [("com.example.Money", subject, 1)],
    )
    by_version = SchemaRegistryClient({"url": url}).get_version(order_subject, 1)
    equal(
        "get_version with references: references",
        [(r.name, r.subject, r.version) for r in by_version.schema.references],
        [("com.example.Money", subject, 1)],
    )
    raises(
        "registering with a missing reference → 42201",
        lambda: client.register_schema(
            f"{prefix}dangling-value",
            Schema(ORDER_WITH_MONEY, "AVRO", [SchemaReference("com.example.Money", f"{prefix}nope-value", 1)]),
        ),
        422,
        42201,
    )
    raises(
        "registering an Avro text that is not JSON → 42201",
        lambda: client.register_schema(f"{prefix}broken-value", Schema("{not json", "AVRO")),
        422,
        42201,
    )

    # Errors.
    raises("get_schema(987654) → 404/40403", lambda: fresh.get_schema(987654), 404, 40403)
    raises(
        "get_version of a missing subject → 404/40401",
        lambda: fresh.get_version(f"{prefix}nope-value", 1),
        404,
        40401,
    )
    raises("get_version of a missing version → 404/40402", lambda: fresh.get_version(subject, 99), 404, 40402)
    raises(
        "lookup_schema of an unregistered schema → 404/40403",
        lambda: fresh.lookup_schema(subject, Schema(ORDER_AVRO, "AVRO")),
        404,
        40403,
    )
    raises(
        "get_versions of a missing subject → 404/40401",
        lambda: fresh.get_versions(f"{prefix}nope-value"),
        404,
        40401,
    )
    return money_id, order_id, subject, order_subject


def avro_round_trip(url, prefix, money_subject, order_subject):
    topic = f"{prefix}orders"
    ctx = SerializationContext(topic, MessageField.VALUE)
    client = SchemaRegistryClient({"url": url})
    serializer = AvroSerializer(client, ORDER_AVRO)  # auto.register.schemas defaults to on
    order = {
        "id": "3f1c2a9e",
        "quantity": 2,
        "amount_cents": 25990,
        "weight_kg": 1.25,
        "paid": True,
        "coupon": None,
        "tags": ["a", "b"],
    }
    data = serializer(order, ctx)
    schema_id = framed_id(data)
    registered = SchemaRegistryClient({"url": url}).get_latest_version(f"{topic}-value")
    equal("AvroSerializer: the frame's id is the one registered under <topic>-value", schema_id, registered.schema_id)
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))  # writer schema from the registry
    equal("AvroDeserializer reads the value back", deserializer(data, ctx), order)

    # With references: the deserializer must resolve them through the registry too.
    refs = [SchemaReference("com.example.Money", money_subject, 1)]
    ref_serializer = AvroSerializer(
        client,
        Schema(ORDER_WITH_MONEY, "AVRO", refs),
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    ref_ctx = SerializationContext(order_subject[: -len("-value")], MessageField.VALUE)
    value = {"id": "o-1", "total": {"amount_cents": 1990, "currency": "BRL"}}
    ref_data = ref_serializer(value, ref_ctx)
    framed_id(ref_data)
    ref_back = AvroDeserializer(SchemaRegistryClient({"url": url}))(ref_data, ref_ctx)
    equal("AvroDeserializer resolves references through the registry", ref_back, value)


def protobuf_classes():
    """An order.proto built at runtime: Order (with a nested Item) and a second top-level Refund."""
    fdp = descriptor_pb2.FileDescriptorProto(name="conformance/order.proto", package="conformance", syntax="proto3")
    f = descriptor_pb2.FieldDescriptorProto
    order = fdp.message_type.add(name="Order")
    order.field.add(name="id", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    order.field.add(name="amount_cents", number=2, type=f.TYPE_INT64, label=f.LABEL_OPTIONAL)
    order.field.add(
        name="items", number=3, type=f.TYPE_MESSAGE, label=f.LABEL_REPEATED, type_name=".conformance.Order.Item"
    )
    item = order.nested_type.add(name="Item")
    item.field.add(name="sku", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    item.field.add(name="quantity", number=2, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    refund = fdp.message_type.add(name="Refund")
    refund.field.add(name="order_id", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    get = message_factory.GetMessageClass
    return (
        get(pool.FindMessageTypeByName("conformance.Order")),
        get(pool.FindMessageTypeByName("conformance.Order.Item")),
        get(pool.FindMessageTypeByName("conformance.Refund")),
    )


def protobuf_round_trip(url, prefix):
    order_cls, item_cls, refund_cls = protobuf_classes()
    # The message-index bytes after the 5-byte header (zig-zag varints; [0] is the single byte 0).
    cases = [
        ("Order", order_cls(id="o-1", amount_cents=25990, items=[item_cls(sku="SKU-1", quantity=2)]), b"\x00"),
        ("Refund", refund_cls(order_id="o-1"), b"\x02\x02"),
        ("Order.Item", item_cls(sku="SKU-2", quantity=3), b"\x04\x00\x00"),
    ]
    for name, message, index in cases:
        ctx = SerializationContext(f"{prefix}proto-{name.lower()}", MessageField.VALUE)
        serializer = ProtobufSerializer(type(message), SchemaRegistryClient({"url": url}))
        data = serializer(message, ctx)
        framed_id(data)
        equal(f"ProtobufSerializer {name}: message-index bytes", data[5 : 5 + len(index)], index)
        equal(f"ProtobufSerializer {name}: body", data[5 + len(index) :], message.SerializeToString())
        deserializer = ProtobufDeserializer(type(message), schema_registry_client=SchemaRegistryClient({"url": url}))
        equal(f"ProtobufDeserializer {name} reads the value back", deserializer(data, ctx), message)


def json_round_trip(url, prefix):
    ctx = SerializationContext(f"{prefix}json-orders", MessageField.VALUE)
    serializer = JSONSerializer(ORDER_JSON_SCHEMA, SchemaRegistryClient({"url": url}))
    value = {"id": "o-1", "quantity": 2, "paid": True}
    data = serializer(value, ctx)
    schema_id = framed_id(data)
    equal("JSONSerializer: the body is the JSON text", json.loads(data[5:]), value)
    fetched = SchemaRegistryClient({"url": url}).get_schema(schema_id)
    equal("JSON schema fetched back: type", fetched.schema_type, "JSON")
    deserializer = JSONDeserializer(None, schema_registry_client=SchemaRegistryClient({"url": url}))
    equal("JSONDeserializer reads the value back", deserializer(data, ctx), value)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(flags):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise Mismatch(f"server.py {' '.join(flags)} exited: {proc.stderr.read().decode(errors='replace')}")
        try:
            urllib.request.urlopen(f"{url}/subjects", timeout=1).read()
            break
        except urllib.error.HTTPError:
            break  # it answers (401 without credentials)
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise Mismatch(f"server.py {' '.join(flags)} did not answer on {url} within 20 s") from None
            time.sleep(0.1)
    return proc, url


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stderr.close()


def auth_check(kind, flags, conf):
    proc, url = start_server(flags)
    try:
        client = SchemaRegistryClient({"url": url, **conf})
        schema_id = client.register_schema("auth-value", Schema(MONEY, "AVRO"))
        fetched = client.get_schema(schema_id).schema_str
        equal(f"{kind}: a client with credentials registers and fetches", fetched, MONEY)
        anonymous = SchemaRegistryClient({"url": url})
        raises(f"{kind}: a client without credentials gets 401", lambda: anonymous.get_subjects(), 401, 40101)
    finally:
        stop_server(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD")
    parser.add_argument("--bearer", metavar="TOKEN")
    args = parser.parse_args()
    prefix = f"conformance-{uuid.uuid4().hex[:8]}."
    try:
        _, _, money_subject, order_subject = client_api(args.url, prefix)
        avro_round_trip(args.url, prefix, money_subject, order_subject)
        protobuf_round_trip(args.url, prefix)
        json_round_trip(args.url, prefix)
        if args.basic_auth:
            auth_check("basic auth", ["--basic-auth", args.basic_auth], {"basic.auth.user.info": args.basic_auth})
        if args.bearer:
            auth_check(
                "bearer",
                ["--bearer", args.bearer],
                {
                    "bearer.auth.credentials.source": "STATIC_TOKEN",
                    "bearer.auth.token": args.bearer,
                    "bearer.auth.logical.cluster": "lsrc-test",
                    "bearer.auth.identity.pool.id": "pool-test",
                },
            )
    except Mismatch as e:
        print(f"conformance: FAILED against {args.url}: {e}", file=sys.stderr)
        print(f"conformance: passed before it: {len(checked)} checks", file=sys.stderr)
        return 1
    except Exception as e:  # the client itself choked on an answer: a protocol mismatch too
        print(f"conformance: FAILED against {args.url}: {type(e).__name__}: {e}", file=sys.stderr)
        print(f"conformance: passed before it: {len(checked)} checks (last: {checked[-1:]})", file=sys.stderr)
        return 1
    parts = ["client API and errors", "Avro references", "Avro", "Protobuf", "JSON Schema"]
    if args.basic_auth:
        parts.append("basic auth")
    if args.bearer:
        parts.append("bearer auth")
    print(f"conformance: OK against {args.url}: {len(checked)} checks passed ({', '.join(parts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
