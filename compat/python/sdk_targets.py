#!/usr/bin/env python3
"""Compatibility check: the official ZITADEL Python SDK against actionsd.

Uses only the public API of `zitadel-client` (unmodified, personal access token auth) to create,
get, list, update and delete an Actions v2 target and to set and list executions, the way a user
of ZITADEL would.

Environment:
  ACTIONSD_URL    base URL of the server, e.g. http://127.0.0.1:8080
  ACTIONSD_TOKEN  an IAM_OWNER token (the admin token)

Prints one `PASS <check>` or `FAIL <check>: <why>` line per check, then a cargo-style line
`test result: ok. N passed; M failed; 0 ignored; ...` (read by the summary of .ci/run), and exits
non-zero if any check failed.
"""

from __future__ import annotations

import datetime
import os
import sys
import uuid
import warnings
from importlib.metadata import version as dist_version

from checks import CheckFailed, Runner, expect, expect_eq

# The SDK imports authlib.jose (for its private-key authenticator), which prints a deprecation
# warning on import (authlib forces its warnings to "always"); that noise is not ours, so warnings
# raised during the import are recorded and dropped.
with warnings.catch_warnings(record=True):
    from zitadel_client import Zitadel
    from zitadel_client.exceptions import ApiError
    from zitadel_client.models import (
        ActionServiceCondition,
        ActionServiceCreateTargetRequest,
        ActionServiceDeleteTargetRequest,
        ActionServiceEventExecution,
        ActionServiceExecutionSearchFilter,
        ActionServiceExecutionType,
        ActionServiceExecutionTypeFilter,
        ActionServiceFunctionExecution,
        ActionServiceGetTargetRequest,
        ActionServiceInConditionsFilter,
        ActionServiceListExecutionsRequest,
        ActionServiceListTargetsRequest,
        ActionServicePaginationRequest,
        ActionServicePayloadType,
        ActionServiceRequestExecution,
        ActionServiceRESTCall,
        ActionServiceRESTWebhook,
        ActionServiceSetExecutionRequest,
        ActionServiceTargetFilter,
        ActionServiceTargetNameFilter,
        ActionServiceTargetSearchFilter,
        ActionServiceTextFilterMethod,
        ActionServiceUpdateTargetRequest,
    )


CREATE_ACTION = "/zitadel.management.v1.ManagementService/CreateAction"
ENDPOINT = "https://hooks.example.com/sdk"
ENDPOINT_2 = "https://hooks.example.com/sdk-v2"


def is_timestamp(value) -> bool:
    return isinstance(value, datetime.datetime) and value.tzinfo is not None


def condition_request_method(method: str) -> ActionServiceCondition:
    return ActionServiceCondition(request=ActionServiceRequestExecution(method=method))


def condition_function(name: str) -> ActionServiceCondition:
    return ActionServiceCondition(function=ActionServiceFunctionExecution(name=name))


def condition_event_group(group: str) -> ActionServiceCondition:
    return ActionServiceCondition(event=ActionServiceEventExecution(group=group))


def main() -> int:
    url = os.environ.get("ACTIONSD_URL", "").strip()
    token = os.environ.get("ACTIONSD_TOKEN", "").strip()
    if not url or not token:
        print("ACTIONSD_URL and ACTIONSD_TOKEN must be set", file=sys.stderr)
        return 2

    # (zitadel_client.__version__ says 0.0.1; the distribution's metadata has the real version.)
    print(f"zitadel-client {dist_version('zitadel-client')} against {url}", flush=True)

    client = Zitadel.with_access_token(url, token)
    actions = client.actions
    r = Runner(describe={ApiError: lambda e: f"HTTP {e.code}, body {e.response_body!r}"})

    suffix = uuid.uuid4().hex[:12]
    name = f"sdk-target-{suffix}"
    name_2 = f"sdk-target-renamed-{suffix}"
    state: dict = {}

    # --- targets -------------------------------------------------------------------------------

    def create_target() -> None:
        resp = actions.create_target(
            ActionServiceCreateTargetRequest(
                name=name,
                endpoint=ENDPOINT,
                timeout="10s",
                rest_webhook=ActionServiceRESTWebhook(interrupt_on_error=True),
                payload_type=ActionServicePayloadType.PAYLOAD_TYPE_JSON,
            )
        )
        expect(bool(resp.id), f"response has an id: {resp!r}")
        expect(resp.id.isdigit(), f"id is a decimal string: {resp.id!r}")
        expect(is_timestamp(resp.creation_date), f"creationDate is a timestamp: {resp.creation_date!r}")
        expect(
            resp.signing_key is not None and len(resp.signing_key) == 36 and resp.signing_key.isalnum(),
            f"signingKey is 36 alphanumerics: {resp.signing_key!r}",
        )
        state["id"] = resp.id
        state["key"] = resp.signing_key

    def get_target() -> None:
        t = actions.get_target(ActionServiceGetTargetRequest(id=state["id"])).target
        expect(t is not None, "response has a target")
        expect_eq(t.id, state["id"], "id")
        expect_eq(t.name, name, "name")
        expect_eq(t.endpoint, ENDPOINT, "endpoint")
        expect_eq(t.timeout, "10s", "timeout")
        expect_eq(t.payload_type, ActionServicePayloadType.PAYLOAD_TYPE_JSON, "payloadType")
        expect_eq(t.signing_key, state["key"], "signingKey")
        expect(t.rest_webhook is not None, "restWebhook is set")
        expect_eq(t.rest_webhook.interrupt_on_error, True, "restWebhook.interruptOnError")
        expect(t.rest_call is None and t.rest_async is None, "only restWebhook is set")
        expect(is_timestamp(t.creation_date), f"creationDate is a timestamp: {t.creation_date!r}")

    def create_duplicate_name() -> None:
        try:
            actions.create_target(
                ActionServiceCreateTargetRequest(
                    name=name,
                    endpoint=ENDPOINT,
                    timeout="10s",
                    rest_webhook=ActionServiceRESTWebhook(),
                )
            )
        except ApiError as e:
            expect_eq(e.code, 409, "HTTP status")
            expect(isinstance(e.response_body, dict), f"JSON error body: {e.response_body!r}")
            expect_eq(e.response_body.get("code"), "already_exists", "Connect error code")
            return
        raise CheckFailed("a second target with the same name was created")

    def list_targets_by_name() -> None:
        resp = actions.list_targets(
            ActionServiceListTargetsRequest(
                pagination=ActionServicePaginationRequest(limit=10, asc=True),
                filters=[
                    ActionServiceTargetSearchFilter(
                        target_name_filter=ActionServiceTargetNameFilter(
                            target_name=name,
                            method=ActionServiceTextFilterMethod.TEXT_FILTER_METHOD_EQUALS,
                        )
                    )
                ],
            )
        )
        expect(resp.pagination is not None, "response has pagination")
        expect_eq(int(resp.pagination.total_result), 1, "pagination.totalResult")
        expect_eq(int(resp.pagination.applied_limit), 10, "pagination.appliedLimit")
        targets = resp.targets or []
        expect_eq([t.id for t in targets], [state["id"]], "listed target ids")
        expect_eq(targets[0].name, name, "listed name")
        expect_eq(targets[0].endpoint, ENDPOINT, "listed endpoint")
        expect_eq(targets[0].signing_key, state["key"], "listed signingKey")

    def list_targets_prefix() -> None:
        resp = actions.list_targets(
            ActionServiceListTargetsRequest(
                filters=[
                    ActionServiceTargetSearchFilter(
                        target_name_filter=ActionServiceTargetNameFilter(
                            target_name="SDK-TARGET-",
                            method=ActionServiceTextFilterMethod.TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE,
                        )
                    )
                ],
            )
        )
        ids = [t.id for t in resp.targets or []]
        expect(state["id"] in ids, f"target {state['id']} among {ids}")

    def update_target() -> None:
        resp = actions.update_target(
            ActionServiceUpdateTargetRequest(
                id=state["id"],
                name=name_2,
                endpoint=ENDPOINT_2,
                expiration_signing_key="0s",
            )
        )
        expect(is_timestamp(resp.change_date), f"changeDate is a timestamp: {resp.change_date!r}")
        expect(
            resp.signing_key is not None and len(resp.signing_key) == 36,
            f"a new 36-character signingKey is returned: {resp.signing_key!r}",
        )
        expect(resp.signing_key != state["key"], "the signing key was rotated")
        state["key"] = resp.signing_key
        state["changed"] = resp.change_date

    def get_updated_target() -> None:
        t = actions.get_target(ActionServiceGetTargetRequest(id=state["id"])).target
        expect(t is not None, "response has a target")
        expect_eq(t.name, name_2, "name")
        expect_eq(t.endpoint, ENDPOINT_2, "endpoint")
        expect_eq(t.timeout, "10s", "timeout (unchanged)")
        expect_eq(t.payload_type, ActionServicePayloadType.PAYLOAD_TYPE_JSON, "payloadType (unchanged)")
        expect(t.rest_webhook is not None, "restWebhook (unchanged)")
        expect_eq(t.signing_key, state["key"], "signingKey (the rotated one)")
        expect(is_timestamp(t.change_date), f"changeDate is a timestamp: {t.change_date!r}")
        expect(t.change_date >= t.creation_date, "changeDate >= creationDate")

    def async_jwt_target() -> None:
        created = actions.create_target(
            ActionServiceCreateTargetRequest(
                name=f"sdk-async-{suffix}",
                endpoint="https://hooks.example.com/async",
                timeout="1.500s",
                rest_async={},
                payload_type=ActionServicePayloadType.PAYLOAD_TYPE_JWT,
            )
        )
        try:
            t = actions.get_target(ActionServiceGetTargetRequest(id=created.id)).target
            expect(t is not None, "response has a target")
            expect_eq(t.rest_async, {}, "restAsync")
            expect(t.rest_webhook is None and t.rest_call is None, "only restAsync is set")
            expect_eq(t.timeout, "1.500s", "timeout")
            expect_eq(t.payload_type, ActionServicePayloadType.PAYLOAD_TYPE_JWT, "payloadType")
            # Switch the type: giving restCall replaces restAsync.
            actions.update_target(
                ActionServiceUpdateTargetRequest(id=created.id, rest_call=ActionServiceRESTCall(interrupt_on_error=True))
            )
            t = actions.get_target(ActionServiceGetTargetRequest(id=created.id)).target
            expect(t.rest_call is not None and t.rest_call.interrupt_on_error is True, f"restCall: {t.rest_call!r}")
            expect(t.rest_async is None and t.rest_webhook is None, "only restCall is set")
        finally:
            actions.delete_target(ActionServiceDeleteTargetRequest(id=created.id))

    # --- executions ----------------------------------------------------------------------------

    def list_functions_methods_services() -> None:
        functions = actions.list_execution_functions().functions or []
        expect("preuserinfo" in functions, f"preuserinfo among functions {functions}")
        methods = actions.list_execution_methods().methods or []
        expect(CREATE_ACTION in methods, f"{CREATE_ACTION} among {len(methods)} methods")
        services = actions.list_execution_services().services or []
        expect(
            "zitadel.management.v1.ManagementService" in services,
            f"zitadel.management.v1.ManagementService among services {services}",
        )

    def set_request_execution() -> None:
        resp = actions.set_execution(
            ActionServiceSetExecutionRequest(condition=condition_request_method(CREATE_ACTION), targets=[state["id"]])
        )
        expect(is_timestamp(resp.set_date), f"setDate is a timestamp: {resp.set_date!r}")

    def list_request_execution() -> None:
        resp = actions.list_executions(
            ActionServiceListExecutionsRequest(
                filters=[
                    ActionServiceExecutionSearchFilter(
                        in_conditions_filter=ActionServiceInConditionsFilter(
                            conditions=[condition_request_method(CREATE_ACTION)]
                        )
                    )
                ]
            )
        )
        executions = resp.executions or []
        expect_eq(len(executions), 1, "executions for the condition")
        e = executions[0]
        expect(e.condition is not None and e.condition.request is not None, f"a request condition: {e.condition!r}")
        expect_eq(e.condition.request.method, CREATE_ACTION, "condition.request.method")
        expect_eq(e.targets, [state["id"]], "targets")
        expect(is_timestamp(e.creation_date), f"creationDate is a timestamp: {e.creation_date!r}")

    def set_function_execution() -> None:
        resp = actions.set_execution(
            ActionServiceSetExecutionRequest(condition=condition_function("preuserinfo"), targets=[state["id"]])
        )
        expect(is_timestamp(resp.set_date), f"setDate is a timestamp: {resp.set_date!r}")

    def set_event_execution() -> None:
        resp = actions.set_execution(
            ActionServiceSetExecutionRequest(condition=condition_event_group("action"), targets=[state["id"]])
        )
        expect(is_timestamp(resp.set_date), f"setDate is a timestamp: {resp.set_date!r}")

    def list_by_type(kind: ActionServiceExecutionType):
        resp = actions.list_executions(
            ActionServiceListExecutionsRequest(
                filters=[
                    ActionServiceExecutionSearchFilter(
                        execution_type_filter=ActionServiceExecutionTypeFilter(execution_type=kind)
                    )
                ]
            )
        )
        return resp.executions or []

    def list_function_execution() -> None:
        executions = list_by_type(ActionServiceExecutionType.EXECUTION_TYPE_FUNCTION)
        found = [e for e in executions if e.condition and e.condition.function and e.condition.function.name == "preuserinfo"]
        expect_eq(len(found), 1, "function/preuserinfo executions")
        expect_eq(found[0].targets, [state["id"]], "targets")

    def list_event_execution() -> None:
        executions = list_by_type(ActionServiceExecutionType.EXECUTION_TYPE_EVENT)
        found = [e for e in executions if e.condition and e.condition.event and e.condition.event.group == "action"]
        expect_eq(len(found), 1, "event group action executions")
        expect_eq(found[0].targets, [state["id"]], "targets")

    def list_by_target() -> None:
        resp = actions.list_executions(
            ActionServiceListExecutionsRequest(
                pagination=ActionServicePaginationRequest(limit=100),
                filters=[
                    ActionServiceExecutionSearchFilter(target_filter=ActionServiceTargetFilter(target_id=state["id"]))
                ],
            )
        )
        executions = resp.executions or []
        expect_eq(len(executions), 3, f"executions using the target ({executions!r})")
        expect_eq(int(resp.pagination.total_result), 3, "pagination.totalResult")

    def clear_event_execution() -> None:
        resp = actions.set_execution(
            ActionServiceSetExecutionRequest(condition=condition_event_group("action"), targets=[])
        )
        expect(is_timestamp(resp.set_date), f"setDate is a timestamp: {resp.set_date!r}")
        executions = list_by_type(ActionServiceExecutionType.EXECUTION_TYPE_EVENT)
        found = [e for e in executions if e.condition and e.condition.event and e.condition.event.group == "action"]
        expect_eq(found, [], "event group action executions after clearing")

    def set_execution_unknown_target() -> None:
        try:
            actions.set_execution(
                ActionServiceSetExecutionRequest(condition=condition_function("preuserinfo"), targets=["1"])
            )
        except ApiError as e:
            expect_eq(e.code, 404, "HTTP status")
            expect(isinstance(e.response_body, dict), f"JSON error body: {e.response_body!r}")
            expect_eq(e.response_body.get("code"), "not_found", "Connect error code")
            return
        raise CheckFailed("an execution with an unknown target was accepted")

    # --- delete --------------------------------------------------------------------------------

    def delete_target() -> None:
        resp = actions.delete_target(ActionServiceDeleteTargetRequest(id=state["id"]))
        expect(
            resp.deletion_date is None or is_timestamp(resp.deletion_date),
            f"deletionDate is a timestamp if given: {resp.deletion_date!r}",
        )

    def get_deleted_target() -> None:
        try:
            actions.get_target(ActionServiceGetTargetRequest(id=state["id"]))
        except ApiError as e:
            expect_eq(e.code, 404, "HTTP status")
            expect(isinstance(e.response_body, dict), f"JSON error body: {e.response_body!r}")
            expect_eq(e.response_body.get("code"), "not_found", "Connect error code")
            expect(bool(e.response_body.get("message")), "error message present")
            return
        raise CheckFailed("the deleted target is still returned")

    def executions_gone_with_target() -> None:
        resp = actions.list_executions(
            ActionServiceListExecutionsRequest(
                filters=[
                    ActionServiceExecutionSearchFilter(target_filter=ActionServiceTargetFilter(target_id=state["id"]))
                ]
            )
        )
        expect_eq(resp.executions or [], [], "executions using the deleted target")

    def delete_again() -> None:
        actions.delete_target(ActionServiceDeleteTargetRequest(id=state["id"]))

    def wrong_token() -> None:
        bad = Zitadel.with_access_token(url, "not-a-valid-token-" + suffix)
        try:
            bad.actions.list_targets(ActionServiceListTargetsRequest())
        except ApiError as e:
            expect_eq(e.code, 401, "HTTP status")
            expect(isinstance(e.response_body, dict), f"JSON error body: {e.response_body!r}")
            expect_eq(e.response_body.get("code"), "unauthenticated", "Connect error code")
            return
        raise CheckFailed("a wrong token was accepted")

    # --- run -----------------------------------------------------------------------------------

    steps = [
        ("unauthenticated: a wrong token is 401 unauthenticated", wrong_token, False),
        ("create_target: restWebhook, 10s, JSON", create_target, False),
        ("get_target: fields as created", get_target, True),
        ("create_target: duplicate name is 409 already_exists", create_duplicate_name, True),
        ("list_targets: targetNameFilter EQUALS finds it", list_targets_by_name, True),
        ("list_targets: STARTS_WITH_IGNORE_CASE finds it", list_targets_prefix, True),
        ("update_target: new name and endpoint, signing key rotated (0s)", update_target, True),
        ("get_target: the update is applied", get_updated_target, True),
        ("create/get/update_target: restAsync JWT target, then restCall", async_jwt_target, False),
        ("list_execution_functions/methods/services", list_functions_methods_services, False),
        ("set_execution: request method CreateAction", set_request_execution, True),
        ("list_executions: inConditionsFilter finds the request execution", list_request_execution, True),
        ("set_execution: function preuserinfo", set_function_execution, True),
        ("set_execution: event group action", set_event_execution, True),
        ("list_executions: executionTypeFilter FUNCTION", list_function_execution, True),
        ("list_executions: executionTypeFilter EVENT", list_event_execution, True),
        ("list_executions: targetFilter finds all three", list_by_target, True),
        ("set_execution: unknown target is 404 not_found", set_execution_unknown_target, False),
        ("set_execution: [] clears the event execution", clear_event_execution, True),
        ("delete_target", delete_target, True),
        ("get_target: deleted target is 404 not_found", get_deleted_target, True),
        ("list_executions: deleting the target removed it from executions", executions_gone_with_target, True),
        ("delete_target: deleting again succeeds (idempotent)", delete_again, True),
    ]
    for title, fn, needs_target in steps:
        if needs_target and "id" not in state:
            r.skip_as_failed(title, "no target (create_target failed)")
            continue
        r.check(title, fn)

    outcome = "ok" if r.failed == 0 else "FAILED"
    print(
        f"test result: {outcome}. {r.passed} passed; {r.failed} failed; 0 ignored; 0 measured; "
        "0 filtered out (python sdk: zitadel-client)",
        flush=True,
    )
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
