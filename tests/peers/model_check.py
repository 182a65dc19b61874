"""Check raw responses against the botocore service models, element by element.

botocore's parsers skip what they do not know, so a parsed response proves little about the raw
one. This walks the raw XML or JSON itself: every element or key must be a member of the model's
output shape, lists must use the model's item names, scalars must parse as their types and enums
must hold modelled values, and required members must be present. Errors are checked for their
protocol's envelope, and modelled error codes for being among the operation's errors or the
common ones every service may return.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime

import botocore.session

_session = botocore.session.get_session()

COMMON_ERRORS = {
    "AccessDenied", "AccessDeniedException", "AuthFailure", "ExpiredToken", "ExpiredTokenException",
    "IncompleteSignature", "IncompleteSignatureException", "InvalidAction", "InvalidClientTokenId",
    "InvalidParameterCombination", "InvalidParameterValue", "MissingAction", "MissingAuthenticationToken",
    "MissingAuthenticationTokenException", "MissingParameter", "RequestExpired", "SignatureDoesNotMatch",
    "InvalidSignatureException", "ThrottlingException", "Throttling", "UnrecognizedClientException",
    "UnauthorizedOperation", "ValidationError", "ValidationException", "UnknownOperationException",
    "DryRunOperation", "FilterLimitExceeded", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound",
    "InvalidParameters", "SerializationException", "RequestEntityTooLarge",
}


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _scalar(shape, text: str, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            int(text)
        elif kind in ("double", "float"):
            float(text)
        elif kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
        elif kind == "timestamp":
            datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{path}: {text!r} is not a {kind}")
    if kind == "string" and shape.enum and text not in shape.enum:
        problems.append(f"{path}: {text!r} is not one of the modelled values")


def check_xml(element: ET.Element, shape, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        by_name = {m.serialization.get("name", n): m for n, m in shape.members.items()}
        seen = set()
        for child in element:
            name = _tag(child)
            seen.add(name)
            if name not in by_name:
                problems.append(f"{path}: <{name}> is not a member of {shape.name}")
                continue
            check_xml(child, by_name[name], f"{path}/{name}", problems)
        for required in shape.required_members:
            wire = shape.members[required].serialization.get("name", required)
            if wire not in seen:
                problems.append(f"{path}: required member {wire} of {shape.name} is missing")
    elif kind == "list":
        item = shape.member.serialization.get("name", "member")
        for child in element:
            if _tag(child) != item:
                problems.append(f"{path}: list item <{_tag(child)}> should be <{item}>")
                continue
            check_xml(child, shape.member, f"{path}/{item}", problems)
    elif kind == "map":
        return
    else:
        _scalar(shape, element.text or "", path, problems)


def check_json(value, shape, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object for {shape.name}")
            return
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}: {key} is not a member of {shape.name}")
                continue
            check_json(item, shape.members[key], f"{path}.{key}", problems)
        for required in shape.required_members:
            if required not in value:
                problems.append(f"{path}: required member {required} of {shape.name} is missing")
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            check_json(item, shape.member, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map")
            return
        for key, item in value.items():
            check_json(item, shape.value, f"{path}[{key}]", problems)
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not an integer")
    elif kind in ("double", "float", "timestamp"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a number ({kind})")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a boolean")
    elif kind in ("string", "blob"):
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of the modelled values")


def check_response(service: str, operation: str, status: int, body: bytes) -> list[str]:
    """Problems with one raw response; an empty list when it matches the model."""
    model = _session.get_service_model(service)
    op = model.operation_model(operation)
    protocol = model.metadata["protocol"]
    problems: list[str] = []
    if status >= 300:
        return check_error(model, op, protocol, body)
    if protocol == "json":
        value = json.loads(body or b"{}")
        if op.output_shape is not None:
            check_json(value, op.output_shape, operation, problems)
        return problems
    root = ET.fromstring(body)
    if _tag(root) != f"{operation}Response":
        return [f"root element <{_tag(root)}> should be <{operation}Response>"]
    if protocol == "query":
        children = {_tag(c): c for c in root}
        result = children.pop(f"{operation}Result", None)
        metadata = children.pop("ResponseMetadata", None)
        if children:
            problems.append(f"unexpected elements {sorted(children)}")
        if metadata is None or metadata.find("{*}RequestId") is None:
            problems.append("ResponseMetadata/RequestId is missing")
        if op.output_shape is not None:
            if result is None:
                problems.append(f"<{operation}Result> is missing")
            else:
                check_xml(result, op.output_shape, f"{operation}Result", problems)
    else:  # ec2
        body_only = ET.Element(root.tag)
        body_only.extend(c for c in root if _tag(c) != "requestId")
        if root.find("{*}requestId") is None:
            problems.append("requestId is missing")
        if op.output_shape is not None:
            check_xml(body_only, op.output_shape, f"{operation}Response", problems)
    return problems


def error_code(protocol: str, body: bytes) -> str:
    if protocol == "json":
        return json.loads(body)["__type"].rsplit("#", 1)[-1]
    root = ET.fromstring(body)
    code = root.find(".//{*}Code") if protocol == "query" else root.find("./Errors/Error/Code")
    return "" if code is None else (code.text or "")


def check_error(model, op, protocol: str, body: bytes) -> list[str]:
    problems: list[str] = []
    if protocol == "json":
        value = json.loads(body)
        if set(value) - {"__type", "message", "Message"} or "__type" not in value:
            problems.append(f"JSON error body has keys {sorted(value)}")
    elif protocol == "query":
        root = ET.fromstring(body)
        if _tag(root) != "ErrorResponse":
            problems.append(f"error root <{_tag(root)}> should be <ErrorResponse>")
        error = root.find("{*}Error")
        if error is None or {_tag(c) for c in error} - {"Type", "Code", "Message"}:
            problems.append("ErrorResponse/Error should hold Type, Code and Message")
        if root.find("{*}RequestId") is None:
            problems.append("ErrorResponse/RequestId is missing")
    else:
        root = ET.fromstring(body)
        if _tag(root) != "Response" or root.find("./Errors/Error/Code") is None or root.find("RequestID") is None:
            problems.append("EC2 errors are <Response><Errors><Error><Code>…</Errors><RequestID>")
    code = error_code(protocol, body)
    modelled = {e.error_code or e.name for e in op.error_shapes} | {e.name for e in op.error_shapes}
    if code not in modelled and code not in COMMON_ERRORS:
        problems.append(f"error code {code} is neither modelled for {op.name} nor a common error")
    return problems
