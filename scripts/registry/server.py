#!/usr/bin/env python3
"""A small, in-memory schema registry speaking the Confluent Schema Registry REST API, for tests.

No Confluent-compatible registry installs from the package registries the project can reach, so
the tests run this one; scripts/registry/conformance.py holds it to the protocol with Confluent's
own Python client. Python standard library only.

Implemented (as Confluent documents them; responses are application/vnd.schemaregistry.v1+json,
errors are {"error_code": int, "message": str}):
  POST /subjects/{subject}/versions          register → {"id": N}; ids are global: the same
                                             (schemaType, schema text, references) gets the same id
                                             under any subject; registering it again under the
                                             same subject adds no version
  POST /subjects/{subject}                   is this schema registered under the subject?
  GET  /schemas/ids/{id}                     {"schema", "schemaType" (left out for AVRO),
                                             "references" (left out when empty)}
  GET  /schemas/ids/{id}/schema              the schema text itself as the body
  GET  /schemas/ids/{id}/versions            [{"subject", "version"}]
  GET  /schemas/ids/{id}/subjects            ["subject", ...]
  GET  /schemas/types                        ["AVRO", "JSON", "PROTOBUF"]
  GET  /subjects                             ["subject", ...] (subjectPrefix honoured)
  GET  /subjects/{subject}/versions          [1, 2, ...]
  GET  /subjects/{subject}/versions/{v}      {subject, id, version, schemaType?, schema,
                                             references?}; v = N, "latest" or -1
  GET  /subjects/{subject}/versions/{v}/schema
  GET  /config                               {"compatibilityLevel": "BACKWARD"}
  GET  /associations/resources/{ns}/{topic}  [] (no topic-to-subject associations are kept)

Deliberately simpler than Confluent's server:
  - Schemas are kept and returned as registered, byte for byte. Confluent stores a canonical form
    (Avro re-printed; a Protobuf schema registered as a base64 FileDescriptorProto, as the Python
    client does, is turned into .proto text), so a reader must not depend on the text's layout.
  - The query parameters `format`, `subject`, `deleted`, `normalize` are accepted and ignored:
    `format=serialized` (a base64 FileDescriptorProto for Protobuf) returns the text as stored.
  - Only AVRO and JSON texts are checked (they must parse as JSON); no compatibility checks; no
    DELETE; no contexts, modes, metadata or rule sets.

Test hooks (test-only, never part of a real registry; not counted, not faulted, no auth needed):
  GET  /_test/requests      {"GET /schemas/ids/1": 3, ...}: requests received per method and path
                            (without the query), counted before auth and faults are applied
  POST /_test/reset-counts  forget the counts
  POST /_test/fault         {"status": 503, "count": 2, "path_prefix": "/schemas"}: the next
                            `count` requests whose path starts with `path_prefix` (default: all)
                            answer `status` with {"error_code": status*100+1 (or "error_code"),
                            "message"}; count -1 = until cleared, default 1. {"delay_s": 5}
                            instead (or as well) makes them wait that long first, for timeouts.
  POST /_test/clear-faults  remove every fault
  POST /_test/reset         forget every schema and subject (ids start again at 1)

Usage: server.py [--host 127.0.0.1] [--port 8081] [--basic-auth USER:PASSWORD] [--bearer TOKEN]
With --basic-auth every request needs HTTP Basic with those credentials, with --bearer
`Authorization: Bearer TOKEN`; otherwise 401 {"error_code": 40101, "message": "Unauthorized"}.
One line per request is logged to stderr.
"""

import argparse
import base64
import binascii
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")


class RegistryError(Exception):
    def __init__(self, status, error_code, message):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject):
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version):
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(schema_id=None):
    message = "Schema not found" if schema_id is None else f"Schema {schema_id} not found"
    return RegistryError(404, 40403, message)


def invalid_schema(message):
    return RegistryError(422, 42201, message)


def invalid_version(text):
    return RegistryError(
        422,
        42202,
        f"The specified version '{text}' is not a valid version id. "
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    )


def parse_version(text):
    """Confluent's VersionId: "latest" or -1 means the latest; otherwise 1..2^31-1."""
    if text.strip().lower() == "latest":
        return -1
    try:
        version = int(text.strip())
    except ValueError:
        raise invalid_version(text) from None
    if (version <= 0 and version != -1) or version > 2**31 - 1:
        raise invalid_version(text)
    return version


class Registry:
    """Schemas by global id, and per subject the ids of its versions in order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.schemas = {}  # id -> {"schema", "schemaType", "references"}
        self.ids_by_key = {}  # (type, text, refs) -> id
        self.subjects = {}  # subject -> [id of version 1, id of version 2, ...]

    @staticmethod
    def key(schema_type, text, references):
        refs = tuple((r.get("name"), r.get("subject"), r.get("version")) for r in references)
        return (schema_type, text, refs)

    def version_ids(self, subject):
        versions = self.subjects.get(subject)
        if not versions:
            raise subject_not_found(subject)
        return versions

    def version(self, subject, version_text):
        version = parse_version(version_text)
        versions = self.version_ids(subject)
        if version == -1:
            version = len(versions)
        if version > len(versions):
            raise version_not_found(version)
        return version, versions[version - 1]

    def check_request(self, body):
        if not isinstance(body, dict):
            raise RegistryError(422, 422, "The request body must be a JSON object")
        text = body.get("schema")
        if not isinstance(text, str) or not text.strip():
            raise invalid_schema("Empty schema")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type not in SCHEMA_TYPES:
            raise invalid_schema(f"Invalid schema type {schema_type}")
        if schema_type in ("AVRO", "JSON"):
            try:
                json.loads(text)
            except ValueError as e:
                raise invalid_schema(f"Invalid schema: {e}") from None
        references = body.get("references") or []
        if not isinstance(references, list):
            raise invalid_schema("Invalid schema: references must be a list")
        for ref in references:
            if not isinstance(ref, dict) or not all(k in ref for k in ("name", "subject", "version")):
                raise invalid_schema(f"Invalid schema: a reference needs name, subject and version: {ref}")
            try:
                self.version(ref["subject"], str(ref["version"]))
            except RegistryError:
                raise invalid_schema(
                    f"Invalid schema: reference {ref['name']} to subject {ref['subject']} "
                    f"version {ref['version']} does not exist"
                ) from None
        refs = [{"name": r["name"], "subject": r["subject"], "version": r["version"]} for r in references]
        return schema_type, text, refs

    def register(self, subject, body):
        with self.lock:
            schema_type, text, refs = self.check_request(body)
            key = self.key(schema_type, text, refs)
            schema_id = self.ids_by_key.get(key)
            if schema_id is None:
                schema_id = len(self.schemas) + 1
                self.schemas[schema_id] = {"schema": text, "schemaType": schema_type, "references": refs}
                self.ids_by_key[key] = schema_id
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return {"id": schema_id}

    def lookup(self, subject, body):
        with self.lock:
            versions = self.version_ids(subject)
            schema_type, text, refs = self.check_request(body)
            schema_id = self.ids_by_key.get(self.key(schema_type, text, refs))
            if schema_id is None or schema_id not in versions:
                raise schema_not_found()
            return self.subject_version(subject, versions.index(schema_id) + 1, schema_id)

    def schema(self, schema_id_text):
        try:
            schema_id = int(schema_id_text)
        except ValueError:
            raise schema_not_found(schema_id_text) from None
        with self.lock:
            stored = self.schemas.get(schema_id)
            if stored is None:
                raise schema_not_found(schema_id)
            return schema_id, stored

    def schema_body(self, schema_id_text):
        _, stored = self.schema(schema_id_text)
        return self.shaped({}, stored)

    def schema_versions(self, schema_id_text):
        schema_id, _ = self.schema(schema_id_text)
        with self.lock:
            return [
                {"subject": subject, "version": i + 1}
                for subject, ids in sorted(self.subjects.items())
                for i, sid in enumerate(ids)
                if sid == schema_id
            ]

    def subject_version(self, subject, version, schema_id):
        body = {"subject": subject, "version": version, "id": schema_id}
        return self.shaped(body, self.schemas[schema_id])

    @staticmethod
    def shaped(body, stored):
        # As Confluent: schemaType is left out for AVRO, references when there are none.
        if stored["schemaType"] != "AVRO":
            body["schemaType"] = stored["schemaType"]
        if stored["references"]:
            body["references"] = [dict(r) for r in stored["references"]]
        body["schema"] = stored["schema"]
        return body

    def get_version(self, subject, version_text):
        with self.lock:
            version, schema_id = self.version(subject, version_text)
            return self.subject_version(subject, version, schema_id)


class Faults:
    """Injected failures for tests: each is a dict with status/delay_s, count and path_prefix."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = []

    def add(self, spec):
        if not isinstance(spec, dict):
            raise RegistryError(422, 422, "a fault is a JSON object")
        status = spec.get("status")
        delay = spec.get("delay_s")
        if status is None and delay is None:
            raise RegistryError(422, 422, 'a fault needs "status" or "delay_s"')
        if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
            raise RegistryError(422, 422, '"status" must be an HTTP status code')
        if delay is not None and not (isinstance(delay, (int, float)) and delay >= 0):
            raise RegistryError(422, 422, '"delay_s" must be a number of seconds')
        count = spec.get("count", 1)
        if not isinstance(count, int) or count == 0 or count < -1:
            raise RegistryError(422, 422, '"count" must be a positive number, or -1 for until cleared')
        fault = {
            "status": status,
            "delay_s": delay,
            "count": count,
            "path_prefix": spec.get("path_prefix", "/"),
            "error_code": spec.get("error_code", status * 100 + 1 if status else None),
        }
        with self.lock:
            self.active.append(fault)

    def clear(self):
        with self.lock:
            self.active.clear()

    def take(self, path):
        """The fault that applies to this request, used up by one if it is counted."""
        with self.lock:
            for fault in self.active:
                if path.startswith(fault["path_prefix"]):
                    if fault["count"] > 0:
                        fault["count"] -= 1
                        if fault["count"] == 0:
                            self.active.remove(fault)
                    return dict(fault)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with connection pools expect
    server_version = "lambda-stream-test-registry"

    # --- plumbing ---------------------------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), format % args))

    def reply(self, status, body, raw=None):
        data = raw.encode("utf-8") if raw is not None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a delay fault outlasting its timeout): nothing to tell

    def error(self, status, error_code, message):
        self.reply(status, {"error_code": error_code, "message": message})

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length > 0 else b""
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise RegistryError(400, 400, f"Unrecognized request body: {e}") from None

    def authorized(self):
        conf = self.server.auth
        if conf is None:
            return True
        given = self.headers.get("Authorization") or ""
        kind, expected = conf
        if kind == "basic":
            if not given.startswith("Basic "):
                return False
            try:
                decoded = base64.b64decode(given[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return hmac.compare_digest(decoded, expected)
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip(), expected)

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def do_PUT(self):
        self.serve()

    def do_DELETE(self):
        self.serve()

    def serve(self):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query)
        try:
            # Read the body first so that a keep-alive connection stays in step whatever happens.
            body = self.read_body() if self.command in ("POST", "PUT") else None
        except RegistryError as e:
            body = e
        if path.startswith("/_test/") or path == "/_test":
            try:
                if isinstance(body, RegistryError):
                    raise body
                return self.test_hook(path, body)
            except RegistryError as e:
                return self.error(e.status, e.error_code, e.message)
        self.server.count(f"{self.command} {path}")
        fault = self.server.faults.take(path)
        if fault and fault["delay_s"]:
            time.sleep(fault["delay_s"])
        if fault and fault["status"]:
            return self.error(
                fault["status"], fault["error_code"], f"Injected fault: status {fault['status']} (test hook)"
            )
        if not self.authorized():
            return self.error(401, 40101, "Unauthorized")
        try:
            if isinstance(body, RegistryError):
                raise body
            segments = [unquote(s) for s in path.strip("/").split("/")] if path != "/" else []
            status, result, raw = self.route(segments, body, query)
            self.reply(status, result, raw)
        except RegistryError as e:
            self.error(e.status, e.error_code, e.message)
        except Exception as e:  # a bug here must still answer, and say so
            self.log_message("internal error: %r", e)
            self.error(500, 50001, f"Internal error in the test registry: {e!r}")

    # --- the API ------------------------------------------------------------------------------

    def route(self, seg, body, query):
        registry = self.server.registry
        method = self.command
        n = len(seg)
        if method == "GET":
            if seg == ["subjects"]:
                prefix = (query.get("subjectPrefix") or [""])[0]
                with registry.lock:
                    return 200, sorted(s for s in registry.subjects if s.startswith(prefix)), None
            if n == 3 and seg[0] == "subjects" and seg[2] == "versions":
                with registry.lock:
                    return 200, list(range(1, len(registry.version_ids(seg[1])) + 1)), None
            if n == 4 and seg[0] == "subjects" and seg[2] == "versions":
                return 200, registry.get_version(seg[1], seg[3]), None
            if n == 5 and seg[0] == "subjects" and seg[2] == "versions" and seg[4] == "schema":
                return 200, None, registry.get_version(seg[1], seg[3])["schema"]
            if n == 3 and seg[:2] == ["schemas", "ids"]:
                return 200, registry.schema_body(seg[2]), None
            if n == 4 and seg[:2] == ["schemas", "ids"] and seg[3] == "schema":
                # The schema itself is the body, as Confluent's "schema only" endpoint answers.
                return 200, None, registry.schema(seg[2])[1]["schema"]
            if n == 4 and seg[:2] == ["schemas", "ids"] and seg[3] == "versions":
                return 200, registry.schema_versions(seg[2]), None
            if n == 4 and seg[:2] == ["schemas", "ids"] and seg[3] == "subjects":
                return 200, sorted({v["subject"] for v in registry.schema_versions(seg[2])}), None
            if seg == ["schemas", "types"]:
                return 200, list(SCHEMA_TYPES), None
            if seg == ["config"]:
                return 200, {"compatibilityLevel": "BACKWARD"}, None
            if n == 4 and seg[:2] == ["associations", "resources"]:
                # Confluent's client (2.16+) asks which subject a topic is associated with before
                # falling back to <topic>-value; this registry keeps no associations.
                return 200, [], None
            if seg == []:
                return 200, {}, None
        if method == "POST":
            if n == 3 and seg[0] == "subjects" and seg[2] == "versions":
                return 200, registry.register(seg[1], body), None
            if n == 2 and seg[0] == "subjects":
                return 200, registry.lookup(seg[1], body), None
        if self.known_path(seg):
            raise RegistryError(405, 405, "HTTP 405 Method Not Allowed")
        raise RegistryError(404, 404, "HTTP 404 Not Found")

    @staticmethod
    def known_path(seg):
        return bool(seg) and seg[0] in ("subjects", "schemas", "config", "associations")

    def test_hook(self, path, body):
        server = self.server
        if self.command == "GET" and path == "/_test/requests":
            with server.counts_lock:
                return self.reply(200, dict(sorted(server.counts.items())))
        if self.command == "POST":
            if path == "/_test/reset-counts":
                with server.counts_lock:
                    server.counts.clear()
                return self.reply(200, {})
            if path == "/_test/fault":
                server.faults.add(body)
                return self.reply(200, {})
            if path == "/_test/clear-faults":
                server.faults.clear()
                return self.reply(200, {})
            if path == "/_test/reset":
                with server.registry.lock:
                    server.registry.reset()
                return self.reply(200, {})
        raise RegistryError(404, 404, f"no test hook {self.command} {path}")


class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrent test clients must not be refused

    def __init__(self, address, auth):
        super().__init__(address, Handler)
        self.auth = auth
        self.registry = Registry()
        self.faults = Faults()
        self.counts = {}
        self.counts_lock = threading.Lock()

    def count(self, key):
        with self.counts_lock:
            self.counts[key] = self.counts.get(key, 0) + 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--basic-auth", metavar="USER:PASSWORD", help="require HTTP Basic with these")
    auth.add_argument("--bearer", metavar="TOKEN", help="require Authorization: Bearer TOKEN")
    args = parser.parse_args(argv)
    if args.basic_auth is not None and ":" not in args.basic_auth:
        parser.error("--basic-auth takes USER:PASSWORD")
    auth_conf = ("basic", args.basic_auth) if args.basic_auth else ("bearer", args.bearer) if args.bearer else None
    server = RegistryServer((args.host, args.port), auth_conf)
    host, port = server.server_address[:2]
    sys.stderr.write(f"schema registry (test) listening on http://{host}:{port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
