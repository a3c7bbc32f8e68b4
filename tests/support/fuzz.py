"""Hypothesis strategies that make requests for any route of the OpenAPI document: path
parameters, query strings, headers and bodies of every wrong kind (types, huge and
non-finite numbers, deep nesting, unicode, missing and extra fields), plus the check that
an answer is one the API may give (never a 500, never HTML, errors as JSON, no server paths).

    op = operations(build_openapi(app))[0]
    request = data.draw(requests_for(op, components, real_values))
    check_answer(client.open(**request), data_dir)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import strategies as st

BIG_INTS = (2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, 10**400, -1, -(2**63) - 1)
WEIRD_TEXT = ("", " ", "..", "../..", "%2e%2e", "/", "\\", "\x00", "job:", "job:1:", "job:x:y", "scratch",
              "é" * 300, "🙂", "a" * 5000, "NaN", "null", "<script>", "' OR 1=1 --")
# Bodies no encoder writes but a careless or hostile client sends.
RAW_BODIES = (
    b"[" * 100_000, b'{"a":' * 50_000, b"{" * 3, b"NaN", b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}',
    b'{"x": 1e999}', b'{"x": ' + b"9" * 5000 + b"}", b"\xff\xfe\x00", b'{"a": "\xed\xa0\x80"}', b"", b"null",
    b"[]", b"1", b'"text"', b'{"model": {"job_id": 99999999999999999999999}}', b'{"' + b"k" * 100_000 + b'": 1}',
)
CONTENT_TYPES = ("application/json", "APPLICATION/JSON", "application/json; charset=latin-1", "text/plain",
                 "application/zip", "APPLICATION/ZIP", "application/octet-stream", "multipart/form-data",
                 "multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded", "", "*/*", "é/ü")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str            # with {name} placeholders
    params: tuple        # path parameters: (name, type)
    query: tuple         # documented query parameter names
    body_schema: dict | None  # the JSON body's schema, if the route reads one
    raw_body: bool       # the route reads an upload (zip or multipart)


def operations(document: dict) -> list[Operation]:
    out = []
    for path, ops in sorted(document["paths"].items()):
        for method, op in sorted(ops.items()):
            params = tuple((p["name"], p["schema"].get("type", "string")) for p in op.get("parameters", ()) if p["in"] == "path")
            query = tuple(p["name"] for p in op.get("parameters", ()) if p["in"] == "query")
            content = op.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            out.append(Operation(method.upper(), path, params, query, schema,
                                 bool(content) and "application/json" not in content))
    return out


def json_values(max_leaves: int = 12):
    """Any JSON-ish value, with the numbers JSON forbids (NaN, infinities) and huge integers."""
    leaves = (st.none() | st.booleans() | st.integers() | st.sampled_from(BIG_INTS)
              | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20) | st.sampled_from(WEIRD_TEXT))
    return st.recursive(leaves, lambda children: st.lists(children, max_size=4)
                        | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=max_leaves)


def _resolve(node: dict, components: dict) -> dict:
    while "$ref" in node:
        node = components.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def from_schema(node: dict, components: dict, depth: int = 0):
    """Values shaped like the schema (right names, often right types, edge values) mixed
    with anything at all: most requests get past the parser and hit the checks."""
    node = _resolve(node, components)
    anything = json_values(6)
    if depth > 4:
        return anything
    options = [anything]
    for key in ("anyOf", "oneOf"):
        options += [from_schema(sub, components, depth + 1) for sub in node.get(key, ())]
    if "enum" in node:
        options.append(st.sampled_from(node["enum"]))
    kind = node.get("type")
    if kind == "integer":
        low, high = node.get("minimum", -10), node.get("maximum", 10**6)
        options += [st.integers(low - 1, high + 1), st.sampled_from(BIG_INTS)]
    elif kind == "number":
        options += [st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)]
    elif kind == "boolean":
        options.append(st.booleans())
    elif kind == "string":
        options += [st.text(max_size=30), st.sampled_from(WEIRD_TEXT)]
    elif kind == "array":
        options.append(st.lists(from_schema(node.get("items", {}), components, depth + 1), max_size=5))
    if "properties" in node:
        options.append(_objects(node, components, depth))
    return st.one_of(options)


def _objects(node: dict, components: dict, depth: int):
    props = node["properties"]

    @st.composite
    def build(draw):
        names = draw(st.lists(st.sampled_from(sorted(props)), unique=True, max_size=len(props)))
        value = {name: draw(from_schema(props[name], components, depth + 1)) for name in names}
        if draw(st.integers(0, 5)) == 0:  # an unknown field now and then
            value[draw(st.text(min_size=1, max_size=12))] = draw(json_values(3))
        return value

    return build()


def _path_value(kind: str, real: tuple):
    if kind == "integer":
        values = st.one_of(st.integers(0, 50), st.sampled_from(BIG_INTS), st.sampled_from(real or (0,)))
        return values.map(str)
    return st.one_of(st.text(max_size=40), st.sampled_from(WEIRD_TEXT), st.sampled_from(real or ("x",)))


@st.composite
def requests_for(draw, op: Operation, components: dict, real_values: dict, token: str):
    """Keyword arguments for Flask's test client `open()`."""
    path = op.path
    for name, kind in op.params:
        value = draw(_path_value(kind, tuple(real_values.get(name, ()))))
        path = path.replace("{" + name + "}", quote(value, safe="") or "%20")
    query = draw(st.dictionaries(st.sampled_from(op.query + ("x", "name", "é")), st.text(max_size=30), max_size=3))
    headers = {"Authorization": draw(st.sampled_from([f"Bearer {token}"] * 8 + ["Bearer nope", ""]))}
    if draw(st.booleans()):
        headers["Accept"] = draw(st.sampled_from(["text/html", "*/*", "application/json", "é"]))
    if draw(st.integers(0, 3)) == 0:
        headers["X-" + draw(st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True))] = draw(st.text(max_size=30).map(_header_safe))
    kind = draw(st.sampled_from(["none", "schema", "json", "raw"] if op.body_schema else ["none", "json", "raw"]))
    body, content_type = None, None
    if kind == "schema":
        body = json.dumps(draw(from_schema(op.body_schema, components)), allow_nan=True).encode()
    elif kind == "json":
        body = json.dumps(draw(json_values()), allow_nan=True).encode()
    elif kind == "raw":
        body = draw(st.sampled_from(RAW_BODIES) | st.binary(max_size=300))
    if body is not None or draw(st.booleans()):
        content_type = draw(st.sampled_from(("application/json",) * 4 + CONTENT_TYPES))
    if content_type:
        headers["Content-Type"] = content_type
    return {"path": path, "method": op.method, "query_string": query, "headers": headers, "data": body}


def _header_safe(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)


def check_answer(response, request: dict, data_dir: str) -> None:
    """What the API promises for every request: no 5xx but the documented 503/507, errors as
    {"error": {"code", "message"}} JSON, never an HTML page, no server path in a JSON body."""
    text = response.get_data(as_text=True) if response.mimetype in ("application/json", "text/html") else ""
    where = f"{request['method']} {request['path']} -> {response.status_code}: {text[:300]}"
    assert response.status_code < 500 or response.status_code in (503, 507), where
    assert response.mimetype != "text/html", where
    if response.status_code >= 400:
        assert response.mimetype == "application/json", where
        body = response.get_json()
        assert isinstance(body, dict) and set(body) == {"error"} and set(body["error"]) == {"code", "message"}, where
        assert body["error"]["code"] and body["error"]["message"], where
    if response.mimetype == "application/json":
        assert data_dir not in text, where
