"""Run by the Python of a venv holding the `kserve` SDK (tests/served/test_kserve.py makes one): reads a manifest as
JSON on stdin and builds it into the SDK's generated models, field by field, from `V1beta1InferenceService`
down (KServe's own classes, and the Kubernetes client's for metadata and resources), each key checked
against its model's `attribute_map`, each value against the declared type and each model's own setters
(required fields, allowed values). Prints one JSON object: the problems found, what serializing the built
object back lost, changed or added (the SDK's defaults), the fields the test asserts on, and the versions used.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version

import kserve
import kubernetes.client

PRIMITIVES = {"str": str, "int": int, "float": (int, float), "bool": bool, "object": object}


def build(data, type_name: str, path: str, problems: list[str]):
    """`data` as an instance of `type_name`: an SDK model's name, `list[...]`, `dict(str, ...)` (`Dict[str, ...]`
    in the Kubernetes client) or a primitive."""
    if type_name.lower().startswith("list["):  # KServe writes list[X], the Kubernetes client List[X]
        if not isinstance(data, list):
            problems.append(f"{path}: a {type(data).__name__}, not a list")
            return data
        return [build(item, type_name[5:-1], f"{path}[{index}]", problems) for index, item in enumerate(data)]
    if type_name.startswith(("dict(", "Dict[")):
        if not isinstance(data, dict):
            problems.append(f"{path}: a {type(data).__name__}, not a mapping")
            return data
        inner = type_name[type_name.index(",") + 1:-1].strip()
        return {key: build(value, inner, f"{path}.{key}", problems) for key, value in data.items()}
    if type_name in PRIMITIVES:
        if not isinstance(data, PRIMITIVES[type_name]) or (isinstance(data, bool) and type_name in ("int", "float")):
            problems.append(f"{path}: {data!r} is not a {type_name}")
        return data
    model = getattr(kserve.models, type_name, None) or getattr(kubernetes.client, type_name, None)
    if model is None:
        problems.append(f"{path}: the SDKs define no {type_name}")
        return data
    if not isinstance(data, dict):
        problems.append(f"{path}: a {type(data).__name__}, not a {type_name} object")
        return data
    attributes = {key: attribute for attribute, key in model.attribute_map.items()}
    problems += [f"{path}.{key}: not a field of {type_name}" for key in sorted(data.keys() - attributes.keys())]
    arguments = {attributes[key]: build(value, model.openapi_types[attributes[key]], f"{path}.{key}", problems)
                 for key, value in data.items() if key in attributes}
    try:
        return model(**arguments)
    except (TypeError, ValueError) as err:
        problems.append(f"{path}: {type_name} refuses it: {err}")
        return data


def differences(sent, back, path: str = "") -> tuple[list[str], dict]:
    """What the round trip lost or changed of `sent` (paths), and what it added (path -> value)."""
    if isinstance(sent, dict) and isinstance(back, dict):
        lost, added = [], {f"{path}.{key}": back[key] for key in back.keys() - sent.keys()}
        for key, value in sent.items():
            if key not in back:
                lost.append(f"{path}.{key}")
                continue
            more_lost, more_added = differences(value, back[key], f"{path}.{key}")
            lost += more_lost
            added |= more_added
        return lost, added
    return ([] if sent == back else [path]), {}


def main() -> None:
    manifest = json.load(sys.stdin)
    problems: list[str] = []
    service = build(manifest, "V1beta1InferenceService", "", problems)
    built = isinstance(service, kserve.V1beta1InferenceService)
    lost, added = differences(manifest, kserve.ApiClient().sanitize_for_serialization(service) if built else None)
    model = service.spec.predictor.model if built and service.spec.predictor.model else None
    print(json.dumps({
        "versions": {name: version(name) for name in ("kserve", "kubernetes")},
        "problems": problems,
        "round_trip": {"lost_or_changed": lost, "added": added},
        "kind": service.kind if built else None,
        "api_version": service.api_version if built else None,
        "predictor": None if model is None else {
            "model_format": model.model_format.name, "protocol_version": model.protocol_version,
            "storage_uri": model.storage_uri, "requests": model.resources.requests,
            "limits": model.resources.limits, "min_replicas": service.spec.predictor.min_replicas,
            "max_replicas": service.spec.predictor.max_replicas},
    }))


if __name__ == "__main__":
    main()
