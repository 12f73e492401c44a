"""A local stand-in for AWS Lambda's Python runtime: events as CloudFront and EventBridge send them,
and a fresh interpreter running an unzipped package (`LambdaProcess`).

The process sees only the package folder and a folder of the libraries the
runtime provides (boto3 and its dependencies, which the package leaves out),
writes no bytecode (Lambda's code folder is read-only) and gets the
environment Lambda sets (function name, region, memory) plus what the caller
passes; the package's own ``zappa_settings.py`` environment is applied by
Zappa's handler on top, as on Lambda.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .venvs import BASE_PYTHON

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # the account of the context's invoked_function_arn (lambda_bootstrap.py)
URL_HOST = f"abcdefghijklmnopqrstuvwxyz012345.lambda-url.{REGION}.on.aws"
SITE_HOST = "vitae.example"
EDGE_IP = "130.176.16.7"  # a CloudFront edge address: the function URL's caller
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")  # sent as is, others base64


def zappa(venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``zappa`` from ``venv`` in the project folder ``cwd``, as an operator with the virtualenv activated would."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))}
    environ.update({"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                    **(env or {})})
    return subprocess.run([str(venv / "bin" / "zappa"), *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=600)


def function_url_event(method: str, path: str, *, query: str = "", headers: dict[str, str] | None = None,
                       body: bytes | str | None = None, viewer_ip: str = "203.0.113.10",
                       forwarded_for: str | None = None, origin_secret: str | None = None,
                       cloudfront: bool = True) -> dict[str, Any]:
    """A Lambda function URL event (payload 2.0) for a request CloudFront forwards.

    As CloudFront sends it with AllViewerExceptHostHeader: Host is the
    function URL's own host, the viewer's address is appended to
    X-Forwarded-For (``forwarded_for`` replaces the whole header), and the
    origin's custom headers carry ``cloudfront-host`` and ``x-origin-verify``.
    ``cloudfront=False`` makes a direct call to the function URL instead.
    """
    sent = {"host": URL_HOST, "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
            "accept": "*/*", "x-amzn-trace-id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"}
    source_ip = viewer_ip
    if cloudfront:
        source_ip = EDGE_IP
        sent.update({"cloudfront-host": SITE_HOST, "via": "2.0 0123456789abcdef.cloudfront.net (CloudFront)",
                     "x-amz-cf-id": base64.urlsafe_b64encode(os.urandom(30)).decode(),
                     "cloudfront-forwarded-proto": "https", "x-forwarded-proto": "https", "x-forwarded-port": "443",
                     "x-forwarded-for": forwarded_for if forwarded_for is not None else viewer_ip})
        if origin_secret is not None:
            sent["x-origin-verify"] = origin_secret
    sent.update({name.lower(): value for name, value in (headers or {}).items()})
    if isinstance(body, str):
        body = body.encode()
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": sent,
        "requestContext": {
            "accountId": "anonymous", "apiId": URL_HOST.split(".", 1)[0], "domainName": URL_HOST,
            "domainPrefix": URL_HOST.split(".", 1)[0], "requestId": str(uuid.uuid4()), "routeKey": "$default",
            "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": sent["user-agent"]},
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    if body is not None:
        textual = sent.get("content-type", "").startswith(_TEXT_TYPES)
        event["body"] = body.decode() if textual else base64.b64encode(body).decode()
        event["isBase64Encoded"] = not textual
    return event


def scheduled_event(function_name: str, task: str) -> dict[str, Any]:
    """The event Zappa's schedule rule ``<function_name>-<task>`` sends: EventBridge's fields through the input
    template Zappa gives the rule's target, which adds ``kwargs``."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function_name}-{task}"], "detail": {}, "kwargs": {},
    }


def response_body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response_body(response))


class LambdaProcess:
    """An unzipped package answering events in a fresh interpreter, one event at a time."""

    def __init__(self, package: Path, runtime_libraries: Path, handler: str, *, env: dict[str, str] | None = None,
                 function_name: str = "vitae-production", probe_routes: bool = False):
        environ = {
            "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC",
            "PYTHONPATH": f"{package}{os.pathsep}{runtime_libraries}", "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(package), "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        }
        environ.update(env or {})
        args = [str(BASE_PYTHON), "-S", "-B", str(BOOTSTRAP), handler] + (["--probe-routes"] if probe_routes else [])
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - the process's log, read by logs()
        self.process = subprocess.Popen(args, cwd=package, env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)

    def invoke(self, event: dict[str, Any], timeout_ms: int = 15000) -> Any:
        """The handler's answer to ``event``; raises `RuntimeError` with the traceback when it raised."""
        self.process.stdin.write(json.dumps({"event": event, "timeout_ms": timeout_ms}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Lambda process exited:\n{self.stop()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["response"]

    def logs(self) -> str:
        """What the package wrote to stdout and stderr so far."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        """End the process; its logs."""
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        return self.logs()
