"""AWS Lambda glue for Zappa: the entry point behind CloudFront, and the bytecode build step.

`lambda_handler` (zappa_settings.json ``lambda_handler``) answers two kinds
of events and refuses every other one without running anything:

* function-URL requests (payload 2.0 with ``requestContext.http``), passed
  to Zappa's handler with only the fields a function URL sends;
* this stage's own schedule: the event EventBridge sends for the rule
  ``<function>-<task>`` Zappa creates for each of `SCHEDULED_TASKS` (the
  stage's ``events``), in this function's region and account, exactly in the
  shape Zappa's rule target writes.

Zappa's handler also runs ``{"command": "module.function"}``, ``exec()``s
``{"raw_command": ...}``, calls Django's ``manage`` and dispatches S3, SNS,
SQS, Lex, Cognito and authorizer events and any ``Scheduled Event`` whose
rule name ends in ``-module.function``. Anyone allowed to call ``Invoke``
could use those, so they never reach it: a refused event is logged as a
WARNING naming its kind (never its content) and answered with our error
shape. The function's resource policy is the other half
(`secure_function_policy`).

Function-URL events get two fixes first:

* The host. A function URL answers only to its own host name, so CloudFront
  sends ``Host: <id>.lambda-url.<region>.on.aws`` and adds ``cloudfront-host:
  <site domain>`` (terraform/cloudfront.tf; a custom origin header overwrites
  any viewer header of that name). Zappa 0.63 restores Host from it for
  payload-1.0 events only, and function URLs send payload 2.0, so it is done
  here: redirects and absolute URLs name the site, never the function.
* The visitor's address. CloudFront appends it to ``X-Forwarded-For``; the
  function URL may append the connecting edge (``requestContext.http.
  sourceIp``). The header is reduced to ``<viewer>, <edge>``, and Zappa makes
  the second-to-last entry ``REMOTE_ADDR``: addresses a visitor writes in
  front are ignored, so ``TRUSTED_PROXIES`` stays 0 on Lambda.

`secure_function_policy` (zappa_settings.json ``callbacks.post``) runs in
the ``zappa`` command after ``deploy`` and ``update``. With a function URL
and ``authorizer: NONE``, Zappa 0.63 grants ``lambda:InvokeFunction`` to
``*`` without any condition (Sid ``FunctionURLAllowPublicAccessInvoke``), so
any AWS account knowing the function's ARN could invoke it directly. The
callback replaces that statement, under the same Sid, with one conditioned
on ``lambda:InvokedViaFunctionUrl = true`` (what AWS requires besides
``lambda:InvokeFunctionUrl`` for a public function URL), and removes any
other public ``InvokeFunction`` grant without that condition. Zappa skips a
Sid that already exists, so later updates keep the safe statement.

`compile_bytecode` (zappa_settings.json ``prebuild_script``) runs in the
``zappa`` command before it packs the virtualenv and the project. Lambda's
code folder is read-only and unzipped files carry the zip's timestamps, so
ordinary timestamp-checked ``.pyc`` files would be ignored and every cold
start would compile every module again. Third-party packages get
unchecked hash-based ``.pyc`` files (pip rewrites them on any reinstall);
the ``service`` package gets checked ones (validated against the source's
hash, so an edited module is never run stale, here or there).

This module imports nothing from the app at load time, except on Lambda
(`initialise`): Zappa's command loads it by file path for the build step.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

_FUNCTION_URL_HOST = ".lambda-url."
log = logging.getLogger(__name__)

#: The functions the stage's ``events`` schedule (zappa_settings.json; a test keeps them in step).
SCHEDULED_TASKS = frozenset({"service.tasks.deliver_outbox", "service.tasks.fold_views"})
#: What a function URL puts into a payload-2.0 event; anything else an invoker adds is dropped.
_FUNCTION_URL_FIELDS = ("version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers",
                        "queryStringParameters", "requestContext", "body", "pathParameters", "isBase64Encoded")
#: Exactly the fields of the input template Zappa 0.63 gives its schedule rules' targets (core.schedule_events).
_SCHEDULE_FIELDS = frozenset({"time", "detail-type", "source", "account", "region", "detail", "version",
                              "resources", "id", "kwargs"})
#: Zappa's Sid for the public ``lambda:InvokeFunction`` statement of a function URL with authorizer NONE.
PUBLIC_INVOKE_SID = "FunctionURLAllowPublicAccessInvoke"
#: A conditioned statement that keeps the function URL working while Zappa's Sid is being replaced.
_BRIDGE_SID = "VitaeFunctionURLInvokeWhileReplacing"


def adapt_function_url_event(event: dict[str, Any]) -> dict[str, Any]:
    """Restore the viewer's host and address in a function-URL event (in place; also returned)."""
    headers = event.get("headers")
    if event.get("version") != "2.0" or not isinstance(headers, dict):
        return event
    if _FUNCTION_URL_HOST in headers.get("host", "") and headers.get("cloudfront-host"):
        headers["host"] = headers["cloudfront-host"]
    edge = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp", "")
    chain = [part.strip() for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if len(chain) > 1 and chain[-1] == edge:
        chain.pop()
    viewer = chain[-1] if chain else edge
    if viewer and edge:
        headers["x-forwarded-for"] = f"{viewer}, {edge}"
    return event


def is_function_url_event(event: Any) -> bool:
    """Whether ``event`` has the shape of a function-URL request (payload 2.0 with ``requestContext.http``)."""
    if not isinstance(event, dict) or event.get("version") != "2.0":
        return False
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    return (isinstance(http, dict) and all(isinstance(http.get(name), str) for name in ("method", "path", "sourceIp"))
            and isinstance(event.get("rawPath"), str) and isinstance(event.get("headers", {}), dict))


def _rule_name(function_name: str, task: str) -> str:
    """The name Zappa 0.63 gives the schedule rule of ``task`` (core.get_scheduled_event_name, one expression)."""
    def name(prefix: str) -> str:
        return f"{prefix:.{max(0, 63 - len(task))}}-{task}"[:64]

    found = name(function_name)
    return found if len(found) < 64 else name(hashlib.sha1(function_name.encode(), usedforsecurity=False).hexdigest())


def is_own_schedule_event(event: Any, context: Any) -> bool:
    """Whether ``event`` is what EventBridge sends for one of this function's `SCHEDULED_TASKS` rules.

    The rule must be in the function's own partition, region and account
    (from ``context.invoked_function_arn``) and named as Zappa names it.
    """
    if not isinstance(event, dict) or set(event) != _SCHEDULE_FIELDS:
        return False
    if (event["detail-type"], event["source"], event["detail"], event["kwargs"]) != ("Scheduled Event", "aws.events",
                                                                                      {}, {}):
        return False
    arn = str(getattr(context, "invoked_function_arn", "")).split(":")
    if len(arn) < 7 or (event["account"], event["region"]) != (arn[4], arn[3]):
        return False
    prefix = f"arn:{arn[1]}:events:{arn[3]}:{arn[4]}:rule/"
    allowed = {prefix + _rule_name(arn[6], task) for task in SCHEDULED_TASKS}
    return isinstance(event["resources"], list) and len(event["resources"]) == 1 and event["resources"][0] in allowed


def _kind(event: Any) -> str:
    """A name for a refused event's kind, from a fixed list: nothing the sender wrote is logged."""
    if not isinstance(event, dict):
        return f"a {type(event).__name__}, not an object"
    for key in ("raw_command", "command", "manage", "Records", "awslogs", "triggerSource", "bot", "httpMethod"):
        if key in event:
            return f"a '{key}' event"
    if event.get("detail-type") == "Scheduled Event":
        return "a schedule that is not this stage's"
    if event.get("version") == "2.0":
        return "a payload-2.0 event that is not a function-URL request"
    return "an event of no known kind"


def lambda_handler(event: Any, context: Any) -> Any:
    """Answer a function-URL request or this stage's schedule through Zappa's handler; refuse anything else.

    A refused event runs nothing, is logged as a WARNING naming only its
    kind, and gets ``{"error": "refused", "message": ...}``.
    """
    if is_function_url_event(event):
        event = adapt_function_url_event({name: event[name] for name in _FUNCTION_URL_FIELDS if name in event})
    elif not is_own_schedule_event(event, context):
        log.warning("refused a direct invocation: %s (only function-URL requests and this stage's schedule run)",
                    _kind(event))
        return {"error": "refused", "message": "this function answers only its URL and its own schedule"}
    from zappa.handler import lambda_handler as zappa_handler

    return zappa_handler(event, context)


def _public(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    return principal == "*" or (isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"]))


def _grants_invoke(statement: dict[str, Any]) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    return statement.get("Effect", "Allow") == "Allow" and any(
        action in ("lambda:InvokeFunction", "lambda:*", "*") for action in actions)


def _via_function_url_only(statement: dict[str, Any]) -> bool:
    """Whether the statement holds only for invocations through the function URL."""
    for test in (statement.get("Condition") or {}).values():
        for key, value in (test or {}).items():
            if key.lower() == "lambda:invokedviafunctionurl" and str(value).lower() == "true":
                return True
    return statement.get("InvokedViaFunctionUrl") in (True, "true")  # how moto 5.2 shows the same condition


def secure_function_policy(cli: Any, *, attempts: int = 5, first_wait: float = 0.5) -> None:
    """Zappa ``callbacks.post``: leave no public ``lambda:InvokeFunction`` without the function-URL condition.

    ``cli`` is Zappa's ``ZappaCLI`` after ``deploy`` or ``update``. Every
    statement granting ``lambda:InvokeFunction`` to ``*`` without
    ``lambda:InvokedViaFunctionUrl = true`` is removed; with a public
    function URL, Zappa's statement is put back under its Sid with that
    condition (the function URL needs it, and Zappa skips a Sid that exists).

    The URL never loses its permission on the way: while Zappa's Sid still
    holds the open statement, a conditioned one is added under
    `_BRIDGE_SID` first and removed only after the Sid is conditioned again.
    Each call is retried (``attempts``, waits doubling from ``first_wait``)
    while Lambda answers that it is busy or throttled; a statement already
    added or already gone counts as done, so a rerun finishes a half-done
    change. Raises botocore's ``ClientError`` when a call still fails (the
    command then fails; the URL keeps working through the bridge).
    """
    import json

    client, name = cli.zappa.lambda_client, cli.lambda_name

    def call(action: str, **kwargs: Any) -> None:
        _retried(lambda: getattr(client, action)(FunctionName=name, **kwargs), action, attempts, first_wait)

    def allow_via_url(sid: str) -> None:
        call("add_permission", StatementId=sid, Action="lambda:InvokeFunction", Principal="*",
             InvokedViaFunctionUrl=True)

    try:
        statements = json.loads(client.get_policy(FunctionName=name)["Policy"])["Statement"]
    except client.exceptions.ResourceNotFoundException:
        statements = []
    public_invoke = [statement for statement in statements if _public(statement) and _grants_invoke(statement)]
    conditioned = {statement.get("Sid") for statement in public_invoke if _via_function_url_only(statement)}
    open_sids = [statement["Sid"] for statement in public_invoke if not _via_function_url_only(statement)]
    public_url = cli.use_function_url and cli.function_url_config.get("authorizer") == "NONE"
    if public_url and PUBLIC_INVOKE_SID not in conditioned and not conditioned:
        allow_via_url(_BRIDGE_SID)
        conditioned.add(_BRIDGE_SID)
    for sid in open_sids:
        call("remove_permission", StatementId=sid)
        print(f"function policy: removed the unconditioned public invoke statement {sid}")
    if public_url and PUBLIC_INVOKE_SID not in conditioned:
        allow_via_url(PUBLIC_INVOKE_SID)
        conditioned.add(PUBLIC_INVOKE_SID)
        print(f"function policy: {PUBLIC_INVOKE_SID} allows lambda:InvokeFunction through the function URL only")
    if _BRIDGE_SID in conditioned and PUBLIC_INVOKE_SID in conditioned:
        call("remove_permission", StatementId=_BRIDGE_SID)


#: Lambda's answers to a permission change that say "try again": a concurrent update, throttling, its own fault.
_RETRYABLE = frozenset({"ResourceConflictException", "TooManyRequestsException", "ThrottlingException",
                        "ServiceException"})


def _retried(send: Any, action: str, attempts: int, first_wait: float) -> None:
    """Runs ``send()`` (an ``add_permission`` or ``remove_permission``) until it succeeds, retrying what
    `_RETRYABLE` names; "already exists" on an add and "not found" on a remove are success (an earlier try
    went through but its answer was lost)."""
    import time

    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            send()
            return
        except ClientError as error:
            code, message = error.response["Error"].get("Code", ""), error.response["Error"].get("Message", "")
            if (action == "remove_permission" and code == "ResourceNotFoundException") or (
                    action == "add_permission" and code == "ResourceConflictException" and "already exists" in message):
                return
            if code not in _RETRYABLE or attempt == attempts - 1:
                raise
            time.sleep(first_wait * 2 ** attempt)


def compile_bytecode() -> None:
    """Write hash-based ``.pyc`` files for the active virtualenv and the ``service`` package.

    Files whose ``.pyc`` already matches are left alone, so a second build
    only reads and hashes. Third-party files that do not compile are skipped
    (they are never imported); raises `RuntimeError` when a module of the
    service does not compile or no virtualenv is active.
    """
    import sys
    import sysconfig
    from py_compile import PycInvalidationMode

    if sys.prefix == sys.base_prefix:
        raise RuntimeError("activate the virtualenv Zappa packs before building")
    _compile_tree(sysconfig.get_paths()["purelib"], PycInvalidationMode.UNCHECKED_HASH)
    broken = _compile_tree(os.path.dirname(os.path.abspath(__file__)), PycInvalidationMode.CHECKED_HASH)
    if broken:
        raise RuntimeError(f"these modules do not compile: {', '.join(broken)}")


def _compile_tree(folder: str, mode) -> list[str]:
    """Compile every ``.py`` under ``folder`` whose ``.pyc`` is missing or stale; the ones that fail."""
    import importlib.util
    import py_compile

    flags = (0b01 if mode is py_compile.PycInvalidationMode.UNCHECKED_HASH else 0b11).to_bytes(4, "little")
    broken = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if name != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            source = os.path.join(root, name)
            cached = importlib.util.cache_from_source(source)
            with open(source, "rb") as handle:
                expected = importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(handle.read())
            try:
                with open(cached, "rb") as handle:
                    if handle.read(16) == expected:
                        continue
            except OSError:
                pass
            try:
                py_compile.compile(source, cfile=cached, doraise=True, invalidation_mode=mode)
            except (py_compile.PyCompileError, SyntaxError, ValueError):
                broken.append(source)
    return broken


def initialise() -> None:
    """Do while the function initialises what its first event would otherwise do: import Zappa's handler
    and the app, create the app (``service.wsgi.app``) and its DynamoDB client. Lambda runs initialisation
    before the first event, at full speed; boto3's client opens no connection until its first call, so
    nothing made here is unsafe to reuse after a freeze."""
    from zappa.handler import LambdaHandler

    LambdaHandler()  # Zappa's singleton: settings, the app module, the WSGI app
    from .wsgi import app

    storage = app.extensions["vitae.storage"]
    if storage.scheme == "dynamodb":
        storage.client  # noqa: B018 - creates the client (endpoint, credentials, service model) now


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("LAMBDA_TASK_ROOT"):  # on Lambda, not in zappa
    initialise()
