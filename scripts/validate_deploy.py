"""The checks of scripts/validate-deploy (which installs the pinned packages this imports).

Everything is offline: the Kubernetes schemas ship inside kubernetes-validate, KEDA's
ScaledObject schema is deploy/kubernetes/schemas/keda-scaledobject-*.json.

  1. schemas: each resource of deploy/kubernetes/kustomization.yaml against Kubernetes' own
     schemas (strict: an unknown field is an error, as with `kubectl apply --validate=strict`) for
     the oldest and the newest Kubernetes version below; the ScaledObject against KEDA's CRD
     schema, its CEL rules, and the kafka trigger's metadata keys;
  2. the worker's own rules, which no schema knows: what ties the Deployment, the ConfigMaps, the
     PodDisruptionBudget and the ScaledObject together (same group, topic and brokers as the
     worker, probes on the metrics port, a grace period that fits the worker's stop, no more
     pods than partitions, …) and the security context;
  3. the Dockerfile: multi-stage, pinned bases (the Rust one new enough for the crate), a
     non-root final USER, CA certificates the vendored OpenSSL finds, no ADD of a URL, and a
     context (.dockerignore) that holds what it copies, including what the crate compiles in;
  4. a self-check: broken copies of all of the above, each of which must be refused for the
     reason it was broken, so a check that stopped working fails the run.
"""

import copy
import difflib
import io
import json
import pathlib
import re
import sys

import jsonschema
import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests are for (PodDisruptionBudget's unhealthyPodEvictionPolicy
# is GA from 1.31) and the newest kubernetes-validate ships.
OLDEST_KUBERNETES = "1.31.0"
# The worker's stop after SIGTERM (docs/operations.md, "Shutdown") and the margin the grace
# period must leave on top of it.
STOP_TARGET_S = 10
STOP_MARGIN_S = 5
PARTITIONS_ANNOTATION = "lambda-stream/source-partitions"
# Built-in kinds the manifests may use; anything else must have a schema of its own here.
BUILTIN_KINDS = {"ConfigMap", "Deployment", "PodDisruptionBudget", "ServiceAccount", "Secret", "Service"}


class Problems(list):
    def add(self, where, message):
        self.append(f"{where}: {message}")


# --- reading --------------------------------------------------------------------------------


def line_index(text):
    """(document index, path tuple) → line, for messages that point into the file."""
    index = {}

    def walk(node, path, doc, line):
        # A mapping's entry is located at its key, a sequence's item where it starts.
        index[(doc, path)] = line
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, path + (key.value,), doc, key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,), doc, item.start_mark.line + 1)

    for doc, node in enumerate(n for n in yaml.compose_all(text) if n is not None):
        walk(node, (), doc, node.start_mark.line + 1)
    return index


class Manifest:
    def __init__(self, file, index, doc, lines):
        self.file, self.index, self.doc, self.lines = file, index, doc, lines

    @property
    def kind(self):
        return self.doc.get("kind")

    @property
    def name(self):
        return (self.doc.get("metadata") or {}).get("name")

    def at(self, path=()):
        path = tuple(path)
        while path and (self.index, path) not in self.lines:
            path = path[:-1]
        line = self.lines.get((self.index, path))
        label = f"{self.kind}/{self.name}"
        return f"{self.file}:{line}: {label}" if line else f"{self.file}: {label}"


def load_manifests():
    """The resources kustomization.yaml lists, in order, each with its file and line index."""
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    resources = []
    for name in kustomization.get("resources", []):
        path = DEPLOY / name
        text = path.read_text()
        lines = line_index(text)
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        rel = str(path.relative_to(ROOT))
        resources += [Manifest(rel, i, d, lines) for i, d in enumerate(docs)]
    return kustomization, resources


def load_inputs():
    kustomization, resources = load_manifests()
    return {
        "kustomization": kustomization,
        "resources": resources,
        "dockerfile": (ROOT / "Dockerfile").read_text(),
        "dockerignore": (ROOT / ".dockerignore").read_text(),
    }


# --- 1. schemas -----------------------------------------------------------------------------


def kubernetes_versions():
    return sorted({OLDEST_KUBERNETES, kubernetes_validate.latest_version()}, key=lambda v: tuple(map(int, v.split("."))))


def kubernetes_schema(kind, api_version, version):
    """The strict schema of a built-in kind and a registry holding its definitions."""
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    schema = kv_utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return schema, registry


def schema_errors(validator, doc):
    for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        message = error.message
        if error.validator == "enum" and len(error.validator_value) > 12:
            # A long list (KEDA's trigger types) says less than the nearest names.
            near = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=3)
            message = f"{error.instance!r} is not one of the {len(error.validator_value)} known values" + (f" (did you mean {', '.join(near)}?)" if near else "")
        yield list(error.absolute_path), message


def keda_schema_file():
    found = sorted((DEPLOY / "schemas").glob("keda-scaledobject-v*.json"))
    if len(found) != 1:
        raise SystemExit(f"validate-deploy: expected one keda-scaledobject-v*.json in {DEPLOY / 'schemas'}, found {len(found)}")
    return found[0]


# CEL rules of KEDA's CRD (x-kubernetes-validations), as Python. A schema with a rule not listed
# here is refused, so a KEDA upgrade that adds one is noticed instead of skipped.
CEL_RULES = {
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)":
        lambda spec: "minReplicaCount" not in spec or spec["minReplicaCount"] <= spec.get("maxReplicaCount", 100),
}


def cel_rules(schema, path=()):
    """(path to the object the rule applies to, rule, message) for every rule in the schema."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule["rule"], rule.get("message", rule["rule"])
    for name, sub in schema.get("properties", {}).items():
        yield from cel_rules(sub, path + (name,))


def check_schemas(inputs, problems):
    versions = kubernetes_versions()
    keda = json.loads(keda_schema_file().read_text())
    keda_validator = jsonschema.Draft202012Validator(keda)
    rules = list(cel_rules(keda))
    for path, rule, _ in rules:
        if rule not in CEL_RULES:
            problems.add(keda_schema_file().relative_to(ROOT), f"CEL rule at {'.'.join(path) or '.'} that validate-deploy cannot evaluate: {rule}")
    for res in inputs["resources"]:
        doc = res.doc
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            problems.add(res.at(), "not a Kubernetes resource (no kind or apiVersion)")
            continue
        if res.kind in BUILTIN_KINDS:
            seen = set()
            for version in versions:
                try:
                    schema, registry = kubernetes_schema(res.kind, doc["apiVersion"], version)
                except FileNotFoundError:
                    problems.add(res.at(), f"Kubernetes {version} has no {doc['apiVersion']} {res.kind}")
                    continue
                validator = jsonschema.Draft202012Validator(schema, registry=registry)
                for path, message in schema_errors(validator, doc):
                    if (tuple(path), message) not in seen:
                        seen.add((tuple(path), message))
                        problems.add(res.at(path), f"{'.'.join(map(str, path)) or '.'}: {message} (Kubernetes {version} schema)")
        elif res.kind == "ScaledObject":
            for path, message in schema_errors(keda_validator, doc):
                problems.add(res.at(path), f"{'.'.join(map(str, path)) or '.'}: {message} (KEDA {keda['x-source']['version']} schema)")
            # KEDA's CRD leaves metadata to the API server: check it as Kubernetes' ObjectMeta.
            schema, registry = kubernetes_schema("ConfigMap", "v1", versions[-1])
            meta = {"$id": schema["$id"], "$ref": schema["properties"]["metadata"]["$ref"]}
            validator = jsonschema.Draft202012Validator(meta, registry=registry)
            for path, message in schema_errors(validator, doc.get("metadata", {})):
                problems.add(res.at(["metadata", *path]), f"metadata.{'.'.join(map(str, path))}: {message}")
            for path, rule, message in rules:
                target = doc
                for key in path:
                    target = target.get(key, {}) if isinstance(target, dict) else {}
                check = CEL_RULES.get(rule)
                if check and isinstance(target, dict):
                    try:
                        ok = check(target)
                    except TypeError:
                        ok = True  # a type error is the schema's to report
                    if not ok:
                        problems.add(res.at(path), f"{message} (KEDA CRD rule)")
        else:
            problems.add(res.at(), f"no schema for kind {res.kind}: add one to validate-deploy before using it")


# --- 2. the worker's own rules --------------------------------------------------------------


def worker_settings():
    """Every setting name the worker reads: the upper-case names its settings code looks up."""
    names = {"RUST_LOG"}
    for source in ("src/config/mod.rs", "src/cli/run.rs"):
        names |= set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', (ROOT / source).read_text()))
    return names


def quantity_cores(value):
    value = str(value)
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def one(resources, kind, problems):
    found = [r for r in resources if r.kind == kind]
    if len(found) != 1:
        problems.add("deploy/kubernetes/kustomization.yaml", f"expected one {kind}, found {len(found)}")
        return None
    return found[0]


def flag(args, name):
    """The value of `--name=V` or `--name V` in a container's args."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1], i + 1
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1], i
    return None, None


def check_worker(inputs, problems):
    resources = inputs["resources"]
    deployment = one(resources, "Deployment", problems)
    pdb = one(resources, "PodDisruptionBudget", problems)
    scaled = one(resources, "ScaledObject", problems)
    if not deployment:
        return
    configmaps = {r.name: r for r in resources if r.kind == "ConfigMap"}
    accounts = {r.name for r in resources if r.kind == "ServiceAccount"}
    spec = deployment.doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    containers = pod.get("containers", [])
    if len(containers) != 1:
        problems.add(deployment.at(["spec", "template", "spec", "containers"]), "expected one container: the worker")
        return
    c = containers[0]
    C = ["spec", "template", "spec", "containers", 0]

    if "replicas" in spec:
        problems.add(deployment.at(["spec", "replicas"]), "spec.replicas is set: the ScaledObject's autoscaler owns the count, and each apply would reset it")
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    if spec.get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate" and str(rolling.get("maxSurge", "25%")) not in ("0", "0%"):
        problems.add(deployment.at(["spec", "strategy"]), "rollingUpdate.maxSurge must be 0: a pod is ready only with partitions, and a surge pod past the partition count never is, stalling the rollout")

    # Settings: the ConfigMap the container reads, with names the worker knows.
    env = {}
    for source in c.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        if name is None:
            continue
        if name not in configmaps:
            problems.add(deployment.at(C + ["envFrom"]), f"envFrom names ConfigMap {name}, which is not among the resources")
            continue
        env.update(configmaps[name].doc.get("data", {}))
        known = worker_settings()
        for key in configmaps[name].doc.get("data", {}):
            if key not in known:
                problems.add(configmaps[name].at(["data", key]), f"{key} is not a setting the worker reads (a misspelt name is silently ignored)")
    for item in c.get("env", []):
        env[item["name"]] = item.get("value", "<from elsewhere>")
    for required in ("MSK_SERVERS", "SOURCE_TOPICS", "CONSUMER_GROUP", "TOPIC_OK", "TOPIC_FAIL", "MAPPING_FILE"):
        if required not in env:
            problems.add(deployment.at(C), f"{required} is set neither by the container's env nor by its ConfigMap")

    # Arguments, the metrics port and the probes.
    args = c.get("args", [])
    if not args or args[0] != "run":
        problems.add(deployment.at(C + ["args"]), "the container's args must start with `run` (the image's entrypoint is the binary)")
    addr, at = flag(args, "--metrics-addr")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    metrics_port = ports.get("metrics")
    if metrics_port is None:
        problems.add(deployment.at(C + ["ports"]), "no container port named `metrics`")
    if addr is None:
        problems.add(deployment.at(C + ["args"]), "no --metrics-addr: the probes and Prometheus need the endpoint")
    else:
        host, _, port = addr.rpartition(":")
        if host not in ("0.0.0.0", "[::]"):
            problems.add(deployment.at(C + ["args", at]), f"--metrics-addr listens on {host}: the kubelet's probes and Prometheus come to the pod's address, use 0.0.0.0")
        if metrics_port is not None and port != str(metrics_port):
            problems.add(deployment.at(C + ["args", at]), f"--metrics-addr port {port} is not the `metrics` container port {metrics_port}")
    annotations = spec.get("template", {}).get("metadata", {}).get("annotations", {})
    if "prometheus.io/port" in annotations and str(annotations["prometheus.io/port"]) != str(metrics_port):
        problems.add(deployment.at(["spec", "template", "metadata", "annotations"]), f"prometheus.io/port {annotations['prometheus.io/port']} is not the metrics port {metrics_port}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet")
        if not get:
            problems.add(deployment.at(C), f"no {probe} on {path}")
            continue
        if get.get("path") != path:
            problems.add(deployment.at(C + [probe]), f"{probe} asks {get.get('path')}, the worker answers it on {path}")
        if get.get("port") not in ("metrics", metrics_port):
            problems.add(deployment.at(C + [probe]), f"{probe} asks port {get.get('port')}, not the metrics port")

    # Stopping.
    grace = pod.get("terminationGracePeriodSeconds", 30)
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    if grace < sleep + STOP_TARGET_S + STOP_MARGIN_S:
        problems.add(deployment.at(["spec", "template", "spec", "terminationGracePeriodSeconds"]),
                     f"terminationGracePeriodSeconds {grace} leaves less than {STOP_TARGET_S} s for the worker's stop and {STOP_MARGIN_S} s of margin after the preStop hook ({sleep} s)")

    # Security.
    pod_sc = pod.get("securityContext", {})
    sc = c.get("securityContext", {})
    if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
        problems.add(deployment.at(C), "runAsNonRoot must be true (pod or container securityContext)")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
        problems.add(deployment.at(C), "runAsUser 0 is root")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.add(deployment.at(C + ["securityContext"]), "allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.add(deployment.at(C + ["securityContext"]), "readOnlyRootFilesystem must be true")
    if sc.get("privileged"):
        problems.add(deployment.at(C + ["securityContext"]), "privileged must not be set")
    caps = sc.get("capabilities", {})
    if "ALL" not in caps.get("drop", []) or caps.get("add"):
        problems.add(deployment.at(C + ["securityContext"]), "capabilities must drop ALL and add none")

    # Resources: the mapping threads fit the CPU the pod may use.
    limits_ = c.get("resources", {})
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in limits_.get(part, {}):
                problems.add(deployment.at(C + ["resources"]), f"resources.{part}.{what} is not set")
    cpu = limits_.get("limits", {}).get("cpu") or limits_.get("requests", {}).get("cpu")
    if cpu is not None and "WORKER_CONCURRENCY" in env and int(env["WORKER_CONCURRENCY"]) > quantity_cores(cpu):
        problems.add(deployment.at(C + ["resources"]), f"WORKER_CONCURRENCY {env['WORKER_CONCURRENCY']} mapping threads on {cpu} CPU: the extra threads only get throttled")

    # The mapping: a file of a mounted ConfigMap (or an S3 object).
    account = pod.get("serviceAccountName")
    if account and account not in accounts:
        problems.add(deployment.at(["spec", "template", "spec", "serviceAccountName"]), f"service account {account} is not among the resources")
    mapping = env.get("MAPPING_FILE", "")
    if mapping and not mapping.startswith("s3://"):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = [m for m in c.get("volumeMounts", []) if mapping.startswith(m["mountPath"].rstrip("/") + "/")]
        if not mounts:
            problems.add(deployment.at(C), f"MAPPING_FILE {mapping} is under no volume mount")
        for m in mounts:
            if "subPath" in m or "subPathExpr" in m:
                problems.add(deployment.at(C + ["volumeMounts"]), "the mapping is mounted with subPath: the kubelet never updates such a file, so a changed ConfigMap would not reach the worker")
            cm = volumes.get(m["name"], {}).get("configMap", {}).get("name")
            key = mapping[len(m["mountPath"].rstrip("/")) + 1:]
            if cm not in configmaps:
                problems.add(deployment.at(C + ["volumeMounts"]), f"the mapping's volume is not a ConfigMap among the resources ({cm})")
            elif key not in configmaps[cm].doc.get("data", {}):
                problems.add(configmaps[cm].at(["data"]), f"ConfigMap {cm} has no key {key} (MAPPING_FILE {mapping})")
            else:
                shipped = ROOT / "mappings" / key
                if shipped.is_file() and configmaps[cm].doc["data"][key] != shipped.read_text():
                    problems.add(configmaps[cm].at(["data", key]), f"differs from mappings/{key}: regenerate it as the file's header says")

    # The PodDisruptionBudget selects the worker's pods.
    if pdb:
        selector = pdb.doc.get("spec", {}).get("selector", {}).get("matchLabels", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.add(pdb.at(["spec", "selector"]), "selects no worker pod (its matchLabels are not the pod template's labels)")
        if pdb.doc.get("spec", {}).get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
            problems.add(pdb.at(["spec"]), "unhealthyPodEvictionPolicy must be AlwaysAllow: a pod without partitions is never ready and would block drains")

    # The ScaledObject scales this Deployment on this group's lag.
    if scaled:
        so = scaled.doc.get("spec", {})
        target = so.get("scaleTargetRef", {})
        if target.get("name") != deployment.name or target.get("kind", "Deployment") != "Deployment":
            problems.add(scaled.at(["spec", "scaleTargetRef"]), f"scales {target.get('kind', 'Deployment')}/{target.get('name')}, not Deployment/{deployment.name}")
        kafka = [(i, t) for i, t in enumerate(so.get("triggers", [])) if t.get("type") == "kafka"]
        if len(kafka) != 1:
            problems.add(scaled.at(["spec", "triggers"]), f"expected one kafka trigger, found {len(kafka)}")
        for i, trigger in kafka:
            meta = trigger.get("metadata", {})
            T = ["spec", "triggers", i, "metadata"]
            if meta.get("consumerGroup") != env.get("CONSUMER_GROUP"):
                problems.add(scaled.at(T + ["consumerGroup"]), f"consumerGroup {meta.get('consumerGroup')} is not the worker's CONSUMER_GROUP {env.get('CONSUMER_GROUP')}")
            topics = [t.strip() for t in env.get("SOURCE_TOPICS", "").split(",")]
            if meta.get("topic") not in topics:
                problems.add(scaled.at(T + ["topic"]), f"topic {meta.get('topic')} is not one of the worker's SOURCE_TOPICS {env.get('SOURCE_TOPICS')}")
            servers = lambda s: sorted(x.strip() for x in (s or "").split(","))
            if servers(meta.get("bootstrapServers")) != servers(env.get("MSK_SERVERS")):
                problems.add(scaled.at(T + ["bootstrapServers"]), f"bootstrapServers {meta.get('bootstrapServers')} are not the worker's MSK_SERVERS {env.get('MSK_SERVERS')}")
            if str(meta.get("allowIdleConsumers", "")).lower() != "false":
                problems.add(scaled.at(T), "allowIdleConsumers must be \"false\": pods past the partition count would idle")
            if meta.get("offsetResetPolicy") != "earliest":
                problems.add(scaled.at(T), "offsetResetPolicy must be earliest, as the worker's auto.offset.reset: a new group's lag counts from the start")
            if not re.fullmatch(r"[1-9][0-9]*", str(meta.get("lagThreshold", ""))):
                problems.add(scaled.at(T), "lagThreshold must be a positive whole number of records")
        partitions = scaled.doc.get("metadata", {}).get("annotations", {}).get(PARTITIONS_ANNOTATION)
        if partitions is None or not re.fullmatch(r"[1-9][0-9]*", str(partitions)):
            problems.add(scaled.at(["metadata"]), f"annotation {PARTITIONS_ANNOTATION} must give the source topic's partition count")
        elif "maxReplicaCount" not in so:
            problems.add(scaled.at(["spec"]), "maxReplicaCount is not set (KEDA's default is 100)")
        elif isinstance(so["maxReplicaCount"], int) and so["maxReplicaCount"] > int(partitions):
            problems.add(scaled.at(["spec", "maxReplicaCount"]), f"maxReplicaCount {so['maxReplicaCount']} is above the source topic's partition count {partitions}: the extra pods would get no partition")

    # The kustomization names the image of the container.
    image = c.get("image", "")
    names = {i.get("name") for i in inputs["kustomization"].get("images", [])}
    if image.split(":")[0].split("@")[0] not in names:
        problems.add(deployment.at(C + ["image"]), f"image {image} is not rewritten by kustomization.yaml's images")
    listed = set(inputs["kustomization"].get("resources", []))
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml" and path.name not in listed:
            problems.add(f"deploy/kubernetes/{path.name}", "not listed in kustomization.yaml's resources")


# --- 3. the Dockerfile ----------------------------------------------------------------------


def check_dockerfile(inputs, metrics_port, problems):
    parser = DockerfileParser(fileobj=io.BytesIO(inputs["dockerfile"].encode()))
    steps = [s for s in parser.structure if s["instruction"] not in ("COMMENT",)]
    where = lambda s: f"Dockerfile:{s['startline'] + 1}"
    stages, names = [], set()
    for step in steps:
        if step["instruction"] == "FROM":
            stages.append([step])
            words = step["value"].split()
            if len(words) == 3 and words[1].upper() == "AS":
                names.add(words[2])
        elif stages:
            stages[-1].append(step)
    if len(stages) < 2:
        problems.add("Dockerfile", "not multi-stage: the runtime image must not carry the build tool chain")
        return
    for stage in stages:
        image = stage[0]["value"].split()[0]
        if image in names:
            continue
        if "$" in image:
            problems.add(where(stage[0]), f"base image {image} comes from a build argument: name it, pinned")
            continue
        name, _, digest = image.partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
        pinned = digest.startswith("sha256:") or (tag not in (None, "latest") and re.search(r"\d", name.rsplit("/", 1)[-1]))
        if not pinned:
            problems.add(where(stage[0]), f"base image {image} is not pinned: give a versioned tag (rust:1.95-bookworm, cc-debian12:…) or a digest")
    for step in steps:
        if step["instruction"] == "ADD":
            sources = [w for w in step["value"].split() if not w.startswith("--")][:-1]
            if any(re.match(r"^(https?|ftp)://|^git@|\.git$", s) for s in sources):
                problems.add(where(step), "ADD of a URL: download in a build step with a checksum instead")
        if step["instruction"] == "COPY" and step["value"].startswith("--from="):
            source = step["value"].split()[0].split("=", 1)[1]
            if source not in names:
                problems.add(where(step), f"COPY --from={source}: no stage of that name")
    final = stages[-1]
    users = [s for s in final if s["instruction"] == "USER"]
    if not users:
        problems.add(where(final[0]), "the final stage sets no USER: it would run as the base image's user (often root)")
    elif users[-1]["value"].split(":")[0].strip() in ("root", "0", ""):
        problems.add(where(users[-1]), "the final stage's USER is root")
    entry = [s for s in final if s["instruction"] == "ENTRYPOINT"]
    if not entry or not entry[-1]["value"].strip().startswith("[") or "lambda-stream" not in entry[-1]["value"]:
        problems.add(where(final[0]), "the final stage's ENTRYPOINT must be the lambda-stream binary, in exec form")
    env = " ".join(s["value"] for s in final if s["instruction"] == "ENV")
    if not re.search(r"(^|\s)SSL_CERT_FILE=/\S+", env):
        problems.add(where(final[0]), "the final stage sets no SSL_CERT_FILE: the vendored OpenSSL would look for CA certificates where the image has none")
    exposed = {p.split("/")[0] for s in final if s["instruction"] == "EXPOSE" for p in s["value"].split()}
    if metrics_port is not None and str(metrics_port) not in exposed:
        problems.add(where(final[0]), f"the final stage does not EXPOSE the metrics port {metrics_port}")
    if not any(s["instruction"] == "RUN" and re.search(r"cargo build\b.*--release\b.*--locked\b", s["value"]) for st in stages[:-1] for s in st):
        problems.add("Dockerfile", "no build stage runs `cargo build --release --locked`")
    # The build stage's Rust is at least the crate's rust-version.
    wanted = re.search(r'^rust-version\s*=\s*"([0-9.]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    for stage in stages[:-1]:
        image = stage[0]["value"].split()[0]
        found = re.search(r"(?:^|/)rust:([0-9]+(?:\.[0-9]+){1,2})", image)
        if found and wanted:
            have = tuple(map(int, found.group(1).split(".")))
            need = tuple(map(int, wanted.group(1).split(".")))
            if have < need[: len(have)]:
                problems.add(where(stage[0]), f"{image} is older than the crate's rust-version {wanted.group(1)}")
    # Files the crate compiles in (include_str!/include_bytes!) are under a directory it copies.
    copied = {w.strip("/").split("/")[0] for s in steps if s["instruction"] == "COPY" and not s["value"].startswith("--from=")
              for w in [w for w in s["value"].split() if not w.startswith("--")][:-1]}
    # Fuzz packages (cargo-fuzz, their own workspaces) are not built in the image.
    sources = (s for folder in ("src", "crates") for s in (ROOT / folder).rglob("*.rs"))
    for source in sorted(s for s in sources if "fuzz" not in s.relative_to(ROOT).parts):
        for included in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', source.read_text()):
            target = (source.parent / included).resolve().relative_to(ROOT)
            if target.parts[0] not in copied:
                problems.add("Dockerfile", f"{source.relative_to(ROOT)} compiles in {target}, which the build stage does not copy")
    # Every member of the workspace is copied: Cargo reads them all before it builds one.
    members = re.search(r"^members\s*=\s*\[([^\]]*)\]", (ROOT / "Cargo.toml").read_text(), re.M)
    for member in re.findall(r'"([^"]+)"', members.group(1)) if members else []:
        if member.strip("./") and member.strip("/").split("/")[0] not in copied:
            problems.add("Dockerfile", f"the build stage does not copy {member}, a member of the workspace")
    # The context (.dockerignore: everything out, then what the build needs back in) holds what
    # the build copies, and what it copies exists.
    allowed = {line[1:].strip().strip("/") for line in inputs["dockerignore"].splitlines() if line.startswith("!")}
    if "*" not in [line.strip() for line in inputs["dockerignore"].splitlines()]:
        problems.add(".dockerignore", "does not start from `*`: target/, .git and .kafka/ would be sent to the builder")
    for step in steps:
        if step["instruction"] == "COPY" and not step["value"].startswith("--from="):
            sources = [w for w in step["value"].split() if not w.startswith("--")][:-1]
            for source in sources:
                if source.strip("/") not in allowed:
                    problems.add(where(step), f"copies {source}, which .dockerignore leaves out of the context")
                if not (ROOT / source).exists():
                    problems.add(where(step), f"copies {source}, which the repository does not have")


# --- 4. the self-check ----------------------------------------------------------------------


def run_checks(inputs):
    problems = Problems()
    check_schemas(inputs, problems)
    check_worker(inputs, problems)
    deployment = [r for r in inputs["resources"] if r.kind == "Deployment"]
    port = None
    if deployment:
        for c in deployment[0].doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            port = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}.get("metrics", port)
    check_dockerfile(inputs, port, problems)
    return problems


def find(inputs, kind, name=None):
    return next(r.doc for r in inputs["resources"] if r.kind == kind and (name is None or r.name == name))


def container(inputs):
    return find(inputs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def kafka_meta(inputs):
    return find(inputs, "ScaledObject")["spec"]["triggers"][0]["metadata"]


def worker_env(inputs):
    return find(inputs, "ConfigMap", "lambda-stream-worker")["data"]


def mapping_data(inputs):
    return find(inputs, "ConfigMap", "lambda-stream-mapping")["data"]


def dockerfile_edit(old, new):
    def edit(inputs):
        assert old in inputs["dockerfile"], old
        inputs["dockerfile"] = inputs["dockerfile"].replace(old, new)
    return edit


# (what is broken, how, a phrase the refusal must contain)
BROKEN = [
    ("Deployment replicas: \"three\"",
     lambda i: find(i, "Deployment")["spec"].__setitem__("replicas", "three"), "'three' is not of type 'integer'"),
    ("a misspelt container field",
     lambda i: container(i).__setitem__("imagePullPolcy", "Always"), "'imagePullPolcy' was unexpected"),
    ("a ScaledObject trigger of type kafak",
     lambda i: find(i, "ScaledObject")["spec"]["triggers"][0].__setitem__("type", "kafak"), "known values (did you mean kafka"),
    ("a misspelt kafka trigger key (KEDA would silently use lagThreshold's default)",
     lambda i: kafka_meta(i).__setitem__("lagTreshold", kafka_meta(i).pop("lagThreshold")), "'lagTreshold' was unexpected"),
    ("a ScaledObject field KEDA does not have",
     lambda i: find(i, "ScaledObject")["spec"].__setitem__("maxReplicas", 3), "'maxReplicas' was unexpected"),
    ("a lagThreshold that is not a number",
     lambda i: kafka_meta(i).__setitem__("lagThreshold", "lots"), "'lots' does not match"),
    ("minReplicaCount above maxReplicaCount",
     lambda i: find(i, "ScaledObject")["spec"].__setitem__("minReplicaCount", 7), "minReplicaCount must be less than or equal to maxReplicaCount"),
    ("ScaledObject metadata with a numeric annotation",
     lambda i: find(i, "ScaledObject")["metadata"]["annotations"].__setitem__(PARTITIONS_ANNOTATION, 6), "6 is not of type 'string'"),
    ("more pods than partitions",
     lambda i: find(i, "ScaledObject")["spec"].__setitem__("maxReplicaCount", 12), "above the source topic's partition count"),
    ("idle consumers allowed",
     lambda i: kafka_meta(i).__setitem__("allowIdleConsumers", "true"), "allowIdleConsumers must be"),
    ("KEDA watching another group",
     lambda i: kafka_meta(i).__setitem__("consumerGroup", "other-group"), "is not the worker's CONSUMER_GROUP"),
    ("KEDA watching another topic",
     lambda i: kafka_meta(i).__setitem__("topic", "payments.v1"), "is not one of the worker's SOURCE_TOPICS"),
    ("a replica count in the Deployment",
     lambda i: find(i, "Deployment")["spec"].__setitem__("replicas", 3), "the ScaledObject's autoscaler owns the count"),
    ("a surge pod in rollouts",
     lambda i: find(i, "Deployment")["spec"]["strategy"]["rollingUpdate"].__setitem__("maxSurge", 1), "maxSurge must be 0"),
    ("the endpoint on loopback only",
     lambda i: container(i)["args"].__setitem__(1, "--metrics-addr=127.0.0.1:9464"), "use 0.0.0.0"),
    ("liveness on the readiness path",
     lambda i: container(i)["livenessProbe"]["httpGet"].__setitem__("path", "/readyz"), "the worker answers it on /healthz"),
    ("a writable root file system",
     lambda i: container(i)["securityContext"].__setitem__("readOnlyRootFilesystem", False), "readOnlyRootFilesystem must be true"),
    ("root allowed",
     lambda i: find(i, "Deployment")["spec"]["template"]["spec"]["securityContext"].__setitem__("runAsNonRoot", False), "runAsNonRoot must be true"),
    ("a capability added",
     lambda i: container(i)["securityContext"]["capabilities"].__setitem__("add", ["NET_ADMIN"]), "drop ALL and add none"),
    ("a grace period shorter than the stop",
     lambda i: find(i, "Deployment")["spec"]["template"]["spec"].__setitem__("terminationGracePeriodSeconds", 5), "terminationGracePeriodSeconds 5"),
    ("more mapping threads than cores",
     lambda i: worker_env(i).__setitem__("WORKER_CONCURRENCY", "8"), "the extra threads only get throttled"),
    ("a misspelt setting",
     lambda i: worker_env(i).__setitem__("SOURCE_TOPIC", worker_env(i).pop("SOURCE_TOPICS")), "SOURCE_TOPIC is not a setting"),
    ("the mapping mounted with subPath",
     lambda i: container(i)["volumeMounts"][0].__setitem__("subPath", "orders-to-billing.yaml"), "mounted with subPath"),
    ("an embedded mapping that drifted from mappings/",
     lambda i: mapping_data(i).__setitem__("orders-to-billing.yaml", mapping_data(i)["orders-to-billing.yaml"] + "# edited\n"), "differs from mappings/orders-to-billing.yaml"),
    ("a PodDisruptionBudget selecting other pods",
     lambda i: find(i, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].__setitem__("app.kubernetes.io/name", "other"), "selects no worker pod"),
    ("a Dockerfile running as root",
     dockerfile_edit("USER 65532:65532", "USER root"), "USER is root"),
    ("a Dockerfile without USER",
     dockerfile_edit("USER 65532:65532\n", ""), "sets no USER"),
    ("a Dockerfile adding a URL",
     dockerfile_edit("WORKDIR /src\n", "WORKDIR /src\nADD https://example.com/tool.tar.gz /tmp/\n"), "ADD of a URL"),
    ("a single-stage Dockerfile",
     lambda i: i.__setitem__("dockerfile", "FROM docker.io/library/rust:1.95-bookworm\nUSER 1000\nENTRYPOINT [\"lambda-stream\"]\n"), "not multi-stage"),
    ("an unpinned base image",
     dockerfile_edit("FROM gcr.io/distroless/cc-debian12:nonroot", "FROM debian"), "is not pinned"),
    ("a base image tagged latest",
     dockerfile_edit("rust:1.95-bookworm", "rust:latest"), "is not pinned"),
    ("a build stage older than the crate's Rust",
     dockerfile_edit("rust:1.95-bookworm", "rust:1.80-bookworm"), "older than the crate's rust-version"),
    ("a build stage that leaves out files the crate compiles in",
     dockerfile_edit("COPY data data\n", ""), "compiles in data/codes/"),
    ("a build stage that leaves out a member of the workspace",
     dockerfile_edit("COPY crates crates\n", ""), "does not copy crates/engine"),
    ("an image whose OpenSSL finds no CA certificates",
     dockerfile_edit("ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n", ""), "sets no SSL_CERT_FILE"),
    ("a build context without the sources",
     lambda i: i.__setitem__("dockerignore", i["dockerignore"].replace("!src/\n", "")), "copies src, which .dockerignore leaves out"),
]


def self_check(base):
    """Each broken copy must be refused, for its reason; the unbroken inputs must pass."""
    failures = []
    for what, breaks, expected in BROKEN:
        inputs = copy.deepcopy(base)
        breaks(inputs)
        problems = run_checks(inputs)
        if not any(expected in p for p in problems):
            failures.append(f"self-check: {what} was not refused with “{expected}”; the checks said: {list(problems) or 'nothing'}")
    return failures


def main():
    inputs = load_inputs()
    problems = run_checks(inputs)
    for problem in problems:
        print(f"validate-deploy: {problem}", file=sys.stderr)
    if problems:
        print(f"validate-deploy: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    failures = self_check(inputs)
    for failure in failures:
        print(f"validate-deploy: {failure}", file=sys.stderr)
    if failures:
        return 1
    keda = json.loads(keda_schema_file().read_text())["x-source"]["version"]
    kinds = ", ".join(f"{r.kind}/{r.name}" for r in inputs["resources"])
    print(f"validate-deploy: {kinds} valid against Kubernetes {' and '.join(kubernetes_versions())} (strict) and KEDA {keda}; "
          f"the worker's rules and the Dockerfile hold; {len(BROKEN)} broken copies refused, each for its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
