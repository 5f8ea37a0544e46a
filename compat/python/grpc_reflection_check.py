#!/usr/bin/env python3
"""Compatibility check: the official gRPC Python client (grpcio, C-core) against actionsd's gRPC
endpoint (plain HTTP/2 without TLS, h2c, on the port of the REST API), with no generated code: every
message class is built at run time from the descriptors that the server's own reflection service
returns.

- grpcio-reflection's ProtoReflectionDescriptorDatabase (it speaks grpc.reflection.v1alpha) lists
  the services; grpc.reflection.v1 is asked the same by hand (its messages are the v1alpha ones,
  byte for byte, under another package name; grpcio-reflection ships no v1 client).
- google.protobuf's DescriptorPool over that database and message_factory.GetMessageClass give the
  request and response classes; channel.unary_unary(path, serializer, deserializer) calls with the
  metadata ('authorization', 'Bearer <token>').
- Calls: GetMyOrg; CreateAction, GetAction, DeleteAction, GetAction again (NOT_FOUND, ZITADEL's
  error id in the message and a zitadel.v1.ErrorDetail in grpc-status-details-bin); a wrong token
  and no token (UNAUTHENTICATED); ExecuteFlowTrigger with a google.protobuf.Struct context;
  ActionService/ListExecutionMethods.

ExecuteFlowTrigger expects no action bound to flow 2 / trigger 4 (true on the fresh server run.sh
starts; the check binds none).

Environment:
  ACTIONSD_URL    the server, e.g. http://127.0.0.1:8080 (or 127.0.0.1:8080); no TLS
  ACTIONSD_TOKEN  an IAM_OWNER token (the admin token)

Prints one `PASS <check>` or `FAIL <check>: <why>` line per check, then a cargo-style line
`test result: ok. N passed; M failed; 0 ignored; ...` (read by the summary of .ci/run), and exits
non-zero if any check failed.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from importlib.metadata import version as dist_version

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from checks import CheckFailed, Runner, expect, expect_eq

MANAGEMENT = "zitadel.management.v1.ManagementService"
ADMIN = "zitadel.admin.v1.AdminService"
ACTION_V2 = "zitadel.action.v2.ActionService"
CONNECTOR = "actionsd.connector.v1.ConnectorService"
SERVICES = (MANAGEMENT, ADMIN, ACTION_V2, CONNECTOR)
GET_ACTION_PATH = f"/{MANAGEMENT}/GetAction"
REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
CALL_TIMEOUT = 10.0  # seconds, each RPC


def grpc_target(url: str) -> str:
    """host:port from ACTIONSD_URL; only plain http (h2c) makes sense for an insecure channel."""
    if url.startswith("https://"):
        raise ValueError(f"{url}: this check uses an insecure channel (h2c); give an http:// URL")
    if url.startswith("http://"):
        url = url[len("http://"):]
    return url.split("/", 1)[0]


def status_details_classes():
    """Wire-compatible stand-ins for google.rpc.Status and google.protobuf.Any (Status: code 1,
    message 2, repeated Any details 3; Any: type_url 1, value 2), so that grpc-status-details-bin
    can be read without a google.rpc package; the ErrorDetail inside comes from reflection."""
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="compat/rpc_status_wire.proto", package="compat", syntax="proto3")
    anyish = f.message_type.add(name="AnyWire")
    anyish.field.add(name="type_url", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    anyish.field.add(name="value", number=2, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    status = f.message_type.add(name="StatusWire")
    status.field.add(name="code", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    status.field.add(name="details", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                     type_name=".compat.AnyWire")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("compat.StatusWire"))


def describe_rpc_error(e: grpc.RpcError) -> str:
    code = getattr(e, "code", None)
    details = getattr(e, "details", None)
    if callable(code) and callable(details):
        return f"RPC failed: {code()} {details()!r}"
    return f"RPC failed: {e!r}"


def main() -> int:
    url = os.environ.get("ACTIONSD_URL", "").strip()
    token = os.environ.get("ACTIONSD_TOKEN", "").strip()
    if not url or not token:
        print("set ACTIONSD_URL and ACTIONSD_TOKEN", file=sys.stderr)
        print(
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out "
            "(python grpc: ACTIONSD_URL/ACTIONSD_TOKEN not set)"
        )
        return 2
    try:
        target = grpc_target(url)
    except ValueError as e:
        print(
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out "
            f"(python grpc: {e})"
        )
        return 2
    print(
        f"grpcio {dist_version('grpcio')}, grpcio-reflection {dist_version('grpcio-reflection')}, "
        f"protobuf {dist_version('protobuf')} against {target} (insecure channel, h2c)",
        flush=True,
    )

    channel = grpc.insecure_channel(target)
    db = ProtoReflectionDescriptorDatabase(channel)
    r = Runner(describe={grpc.RpcError: describe_rpc_error})
    auth = [("authorization", f"Bearer {token}")]
    suffix = uuid.uuid4().hex[:12]
    action_name = f"py-grpc-{suffix}"
    script = "function pyAction(ctx, api) {}"
    state: dict = {}

    def method(service: str, name: str):
        return state["pool"].FindServiceByName(service).methods_by_name[name]

    def stub(service: str, name: str):
        """(request class, callable) for service/name, both from the reflected descriptors."""
        m = method(service, name)
        req_cls = message_factory.GetMessageClass(m.input_type)
        resp_cls = message_factory.GetMessageClass(m.output_type)
        call = channel.unary_unary(
            f"/{service}/{name}",
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString,
        )
        return req_cls, call

    def invoke(service: str, name: str, fill=None, metadata=None):
        req_cls, call = stub(service, name)
        req = req_cls()
        if fill is not None:
            fill(req)
        return call(req, metadata=auth if metadata is None else metadata, timeout=CALL_TIMEOUT)

    def enum_number(enum_full_name: str, value_name: str) -> int:
        enum = state["pool"].FindEnumTypeByName(enum_full_name)
        expect(value_name in enum.values_by_name, f"{enum_full_name} has no value {value_name}")
        return enum.values_by_name[value_name].number

    def expect_rpc_error(fn, code: grpc.StatusCode) -> grpc.RpcError:
        try:
            resp = fn()
        except grpc.RpcError as e:
            expect_eq(e.code(), code, f"status code (details {e.details()!r})")
            return e
        raise CheckFailed(f"the call succeeded, want {code}: {resp!r}")

    # --- reflection ----------------------------------------------------------------------------

    def reflection_v1alpha() -> None:
        services = list(db.get_services())
        print(f"  v1alpha list_services: {services}")
        missing = [s for s in SERVICES if s not in services]
        expect(not missing, f"missing {missing} in {services}")

    def reflection_v1() -> None:
        # One stream, two requests: list_services, then the file that declares ActionService.
        info = channel.stream_stream(
            REFLECTION_V1,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=ACTION_V2),
        ]
        responses = list(info(iter(requests), timeout=CALL_TIMEOUT))
        expect_eq(len(responses), 2, "responses on the stream")
        listed, found = responses
        expect_eq(listed.WhichOneof("message_response"), "list_services_response", "first response")
        services = [s.name for s in listed.list_services_response.service]
        print(f"  v1 list_services: {services}")
        missing = [s for s in SERVICES if s not in services]
        expect(not missing, f"missing {missing} in {services}")
        expect_eq(found.WhichOneof("message_response"), "file_descriptor_response", "second response")
        declares = []
        for raw in found.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            declares += [f"{fd.package}.{s.name}" for s in fd.service]
        expect(ACTION_V2 in declares, f"no returned file declares {ACTION_V2} (services: {declares})")

    def descriptors() -> None:
        pool = descriptor_pool.DescriptorPool(db)
        counts = {}
        for service in SERVICES:
            sd = pool.FindServiceByName(service)
            expect(len(sd.methods) > 0, f"{service} has no methods")
            for m in sd.methods:
                message_factory.GetMessageClass(m.input_type)
                message_factory.GetMessageClass(m.output_type)
            counts[service.rsplit(".", 1)[1]] = len(sd.methods)
        print(f"  methods: {counts}")
        state["pool"] = pool

    # --- calls ---------------------------------------------------------------------------------

    def get_my_org() -> None:
        resp = invoke(MANAGEMENT, "GetMyOrg")
        expect(resp.HasField("org"), f"response has an org: {resp}")
        expect(bool(resp.org.id), f"org.id is set: {resp}")
        state["org_id"] = resp.org.id

    def create_action() -> None:
        def fill(req):
            req.name = action_name
            req.script = script
            req.timeout.seconds = 2
            req.allowed_to_fail = True

        resp = invoke(MANAGEMENT, "CreateAction", fill)
        expect(bool(resp.id), f"response has an id: {resp}")
        expect(resp.id.isdigit(), f"id is a decimal string: {resp.id!r}")
        if "org_id" in state:
            expect_eq(resp.details.resource_owner, state["org_id"], "details.resource_owner")
        state["action_id"] = resp.id

    def get_action() -> None:
        resp = invoke(MANAGEMENT, "GetAction", lambda req: setattr(req, "id", state["action_id"]))
        a = resp.action
        expect_eq(a.id, state["action_id"], "action.id")
        expect_eq(a.name, action_name, "action.name")
        expect_eq(a.script, script, "action.script")
        expect_eq(a.state, enum_number("zitadel.action.v1.ActionState", "ACTION_STATE_ACTIVE"), "action.state")
        expect_eq((a.timeout.seconds, a.timeout.nanos), (2, 0), "action.timeout (seconds, nanos)")
        expect_eq(a.allowed_to_fail, True, "action.allowed_to_fail")

    def delete_action() -> None:
        invoke(MANAGEMENT, "DeleteAction", lambda req: setattr(req, "id", state["action_id"]))
        state["deleted"] = True

    def get_deleted_action() -> None:
        e = expect_rpc_error(
            lambda: invoke(MANAGEMENT, "GetAction", lambda req: setattr(req, "id", state["action_id"])),
            grpc.StatusCode.NOT_FOUND,
        )
        details = e.details() or ""
        expect("(" in details, f"ZITADEL's error id in the message: {details!r}")
        state["not_found"] = e

    def not_found_details() -> None:
        e = state["not_found"]
        raw = [v for k, v in (e.trailing_metadata() or ()) if k == "grpc-status-details-bin"]
        expect_eq(len(raw), 1, "grpc-status-details-bin entries in the trailers")
        status = status_details_classes().FromString(raw[0])
        expect_eq(status.code, grpc.StatusCode.NOT_FOUND.value[0], "google.rpc.Status.code")
        expect_eq(status.message, e.details(), "google.rpc.Status.message (= grpc-message)")
        expect_eq(len(status.details), 1, "google.rpc.Status.details")
        any_ = status.details[0]
        expect_eq(any_.type_url, "type.googleapis.com/zitadel.v1.ErrorDetail", "details[0].type_url")
        # The ErrorDetail class, too, from reflection.
        detail_cls = message_factory.GetMessageClass(state["pool"].FindMessageTypeByName("zitadel.v1.ErrorDetail"))
        detail = detail_cls.FromString(any_.value)
        m = re.search(r"\(([^()]+)\)\s*$", e.details())
        expect(m is not None, f"an error id in parentheses at the end of {e.details()!r}")
        expect_eq(detail.id, m.group(1), "ErrorDetail.id (= the id in the message)")
        expect(bool(detail.message), f"ErrorDetail.message is set: {detail}")

    def wrong_token() -> None:
        e = expect_rpc_error(
            lambda: invoke(MANAGEMENT, "GetMyOrg", metadata=[("authorization", f"Bearer wrong-{suffix}")]),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        print(f"  details: {e.details()!r}")

    def no_token() -> None:
        e = expect_rpc_error(lambda: invoke(MANAGEMENT, "GetMyOrg", metadata=[]), grpc.StatusCode.UNAUTHENTICATED)
        print(f"  details: {e.details()!r}")

    def execute_flow_trigger() -> None:
        def fill(req):
            req.flow_type = "2"
            req.trigger_type = "4"
            json_format.ParseDict({"v1": {"user": {"id": "u1"}}}, req.context)

        resp = invoke(MANAGEMENT, "ExecuteFlowTrigger", fill)
        succeeded = enum_number("zitadel.management.v1.Outcome", "OUTCOME_SUCCEEDED")
        expect_eq(resp.outcome, succeeded, f"outcome (response {resp})")
        expect_eq(len(resp.runs), 0, "runs (no action is bound to flow 2 / trigger 4)")
        expect_eq(resp.error, "", "error")

    def list_execution_methods() -> None:
        resp = invoke(ACTION_V2, "ListExecutionMethods")
        methods = list(resp.methods)
        expect(GET_ACTION_PATH in methods, f"{GET_ACTION_PATH} in {len(methods)} methods: {methods[:10]}...")

    # --- run -----------------------------------------------------------------------------------

    steps = [
        ("reflection v1alpha (grpcio-reflection): list_services has the four services", reflection_v1alpha, None),
        ("reflection v1: list_services and file_containing_symbol on one stream", reflection_v1, None),
        ("descriptors: DescriptorPool(reflection) builds every method's messages", descriptors, None),
        ("ManagementService/GetMyOrg: org.id", get_my_org, "pool"),
        ("ManagementService/CreateAction: 2s timeout, allowedToFail", create_action, "pool"),
        ("ManagementService/GetAction: name, script, ACTION_STATE_ACTIVE, timeout 2s", get_action, "action_id"),
        ("ManagementService/DeleteAction", delete_action, "action_id"),
        ("ManagementService/GetAction: deleted action is NOT_FOUND with an error id", get_deleted_action, "deleted"),
        ("NOT_FOUND: grpc-status-details-bin has a zitadel.v1.ErrorDetail", not_found_details, "not_found"),
        ("unauthenticated: a wrong token is UNAUTHENTICATED", wrong_token, "pool"),
        ("unauthenticated: no authorization metadata is UNAUTHENTICATED", no_token, "pool"),
        ("ManagementService/ExecuteFlowTrigger: flow 2, trigger 4, Struct context", execute_flow_trigger, "pool"),
        ("ActionService/ListExecutionMethods: lists ManagementService/GetAction", list_execution_methods, "pool"),
    ]
    try:
        for title, fn, needs in steps:
            if needs and needs not in state:
                r.skip_as_failed(title, f"not run: an earlier step failed (no {needs})")
                continue
            r.check(title, fn)
    finally:
        if "action_id" in state and "deleted" not in state:  # best effort, not a check
            try:
                invoke(MANAGEMENT, "DeleteAction", lambda req: setattr(req, "id", state["action_id"]))
            except Exception:  # noqa: BLE001
                pass
        channel.close()

    outcome = "ok" if r.failed == 0 else "FAILED"
    print(
        f"test result: {outcome}. {r.passed} passed; {r.failed} failed; 0 ignored; 0 measured; "
        "0 filtered out (python grpc: grpcio + reflection)",
        flush=True,
    )
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
