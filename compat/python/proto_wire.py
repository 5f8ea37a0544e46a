#!/usr/bin/env python3
"""Wire compatibility of proto/ with ZITADEL: compiles every file under proto/ (grpcio-tools'
protoc) and checks the descriptor against tests/fixtures/zitadel_wire.json, the field list read
from ZITADEL's public protos: every shared message field keeps ZITADEL's name, number, type and
JSON name, every shared enum value its number, and actionsd's own fields in shared messages use
numbers from 1000 up without colliding; and every RPC of openapi/openapi.json is declared (and no
other). Fails on any drift. Prints one cargo-style `test result:` line (run.sh counts it).
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import grpc_tools
from google.protobuf import descriptor_pb2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "tests/fixtures/zitadel_wire.json")
OPENAPI = os.path.join(ROOT, "openapi/openapi.json")
PROTO = os.path.join(ROOT, "proto")


def result(ok, why):
    if ok:
        print(f"test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out (proto wire: {why})")
    else:
        print(f"test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (proto wire: {why})")
    sys.exit(0 if ok else 1)


files = sorted(glob.glob(os.path.join(PROTO, "**", "*.proto"), recursive=True))
well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
DESC = os.path.join(tempfile.mkdtemp(), "all.pb")
compiled = subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO}", f"-I{well_known}",
     f"--descriptor_set_out={DESC}", "--include_imports", *files],
    capture_output=True, text=True)
if compiled.returncode != 0:
    print(compiled.stdout + compiled.stderr)
    result(False, "protoc failed")
print(f"protoc: {len(files)} files compiled")

fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(DESC, "rb").read())
F = descriptor_pb2.FieldDescriptorProto
SCALAR = {v: k[len("TYPE_"):].lower() for k, v in F.Type.items()}

messages, enums, services = {}, {}, {}


def walk(prefix, msgs, ens):
    for e in ens:
        enums[prefix + e.name] = e
    for m in msgs:
        full = prefix + m.name
        messages[full] = m
        walk(full + ".", m.nested_type, m.enum_type)


for f in fds.file:
    pre = f.package + "." if f.package else ""
    walk(pre, f.message_type, f.enum_type)
    for s in f.service:
        services[pre + s.name] = s


def type_of(fd):
    if fd.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
        t = fd.type_name.lstrip(".")
        m = messages.get(t)
        if m is not None and m.options.map_entry:
            k, v = m.field
            return "map<%s, %s>" % (type_of(k), type_of(v))
    else:
        t = SCALAR[fd.type]
    if fd.label == F.LABEL_REPEATED:
        return "repeated " + t
    return t


fixture = json.load(open(FIXTURE))
errors, checked_fields, checked_values = [], 0, 0
for name, spec in fixture.items():
    if name.startswith("_"):
        continue
    if name in messages:
        m = messages[name]
        fields = {f.name: f for f in m.field}
        for fname, (num, typ) in spec.items():
            checked_fields += 1
            f = fields.get(fname)
            if f is None:
                errors.append(f"{name}.{fname}: missing")
                continue
            if f.number != num:
                errors.append(f"{name}.{fname}: number {f.number}, ZITADEL {num}")
            if type_of(f) != typ:
                errors.append(f"{name}.{fname}: type {type_of(f)}, ZITADEL {typ}")
            if f.json_name and f.json_name != "".join(
                    p if i == 0 else p[:1].upper() + p[1:] for i, p in enumerate(fname.split("_"))):
                errors.append(f"{name}.{fname}: json name {f.json_name}")
        zit_numbers = {n for n, _ in spec.values()}
        for f in m.field:
            if f.name not in spec:
                if f.number < 1000:
                    errors.append(f"{name}.{f.name} = {f.number}: not ZITADEL's and below 1000")
                if f.number in zit_numbers:
                    errors.append(f"{name}.{f.name} = {f.number}: collides with a ZITADEL field")
    elif name in enums:
        e = enums[name]
        values = {v.name: v.number for v in e.value}
        for vname, num in spec.items():
            checked_values += 1
            if values.get(vname) != num:
                errors.append(f"{name}.{vname}: {values.get(vname)}, ZITADEL {num}")
        for vname in values:
            if vname not in spec:
                errors.append(f"{name}.{vname}: not in ZITADEL's enum")
    else:
        errors.append(f"{name}: not defined in the protos")

# Every RPC of the OpenAPI inventory whose operation is an RPC of the Connect table.
SERVICE = {
    "ManagementService": "zitadel.management.v1.ManagementService",
    "AdminService": "zitadel.admin.v1.AdminService",
    "ActionService": "zitadel.action.v2.ActionService",
    "ConnectorService": "actionsd.connector.v1.ConnectorService",
}
NOT_RPC = {  # REST-only documents, the SSE tail and the signed connector call
    "ManagementService_GetTriggerTypes", "ManagementService_GetTriggerContextSchema",
    "ManagementService_GetTriggerEffectsSchema", "ManagementService_TailRuns", "ConnectorService_Call",
}
api = json.load(open(OPENAPI))
ops = set()
for path, item in api["paths"].items():
    for method, op in item.items():
        if isinstance(op, dict) and "operationId" in op:
            ops.add(op["operationId"])
rpcs = {f"{svc}/{m.name}" for svc, s in services.items() for m in s.method}
mapped = 0
for op in sorted(ops - NOT_RPC):
    short, method = op.split("_", 1)
    full = f"{SERVICE[short]}/{method}"
    if full not in rpcs:
        errors.append(f"operation {op}: no RPC {full}")
    else:
        mapped += 1
for r in sorted(rpcs):
    svc, method = r.split("/")
    short = svc.rsplit(".", 1)[1]
    if f"{short}_{method}" not in ops:
        errors.append(f"RPC {r}: not in openapi.json")

shared = sum(1 for k in fixture if not k.startswith("_"))
print(f"fixture: {shared} shared messages/enums, {checked_fields} fields, {checked_values} enum values")
print(f"descriptor: {len(messages)} messages, {len(enums)} enums, {len(services)} services, {len(rpcs)} RPCs")
print(f"openapi: {len(ops)} operations, {mapped} mapped to RPCs, {len(ops & NOT_RPC)} not RPCs: {sorted(ops & NOT_RPC)}")
for s in sorted(services):
    print(f"  {s}: {len(services[s].method)} RPCs")
if errors:
    print(f"FAIL: {len(errors)} problem(s)")
    for e in errors:
        print("  " + e)
    result(False, f"{len(errors)} difference(s) from ZITADEL or the RPC table")
result(True, f"{checked_fields} fields and {checked_values} enum values as in ZITADEL, {mapped} RPCs declared")
