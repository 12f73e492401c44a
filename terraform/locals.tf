# ---------------------------------------------------------------------------
# Names derived once, used everywhere
# ---------------------------------------------------------------------------

locals {
  name       = "${var.project}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Zappa names the function "<project_name>-<stage>"; the stack creates its
  # log group and role before Zappa creates the function itself.
  function_name = local.name
  function_arn  = "arn:${local.partition}:lambda:${var.aws_region}:${local.account_id}:function:${local.function_name}"
  log_group     = "/aws/lambda/${local.function_name}"

  www_domain = "www.${var.domain_name}"
  aliases    = var.www_redirect ? [var.domain_name, local.www_domain] : [var.domain_name]
  zone_name  = coalesce(var.route53_zone_name, var.domain_name)

  # Bucket names are global: the account id keeps them unique and predictable.
  site_bucket  = "${local.name}-site-${local.account_id}"
  zappa_bucket = "${local.name}-zappa-${local.account_id}"
  logs_bucket  = "${local.name}-logs-${local.account_id}"

  site_origin_id = "site-bucket"
  api_origin_id  = "api-function-url"
  api_enabled    = var.api_origin_domain != null
  # Rendered by the function from the cached GitHub issues (pages, feeds, sitemap); not files on S3.
  blog_paths = ["/blog", "/blog/*", "/sitemap.xml"]
  # Without a www name there is nothing to redirect: the function origin's
  # behaviours then run no function at all (each run is billed).
  www_redirect_functions = var.www_redirect ? [aws_cloudfront_function.www_redirect.arn] : []
  # Other sites' browsers may call the API: their Origin must split the cache.
  cors_enabled = length(var.allowed_origins) > 0

  # The site's own policy: every script, style and font comes from the site,
  # the widgets' images may come from any HTTPS host (album covers, avatars).
  # With a Turnstile site key the contact form carries Cloudflare's widget:
  # its script and frames, and nothing else, may then come from Cloudflare
  # (the app widens its own policy the same way: service/core/security.py).
  turnstile_enabled = var.turnstile_site_key != ""
  turnstile_origin  = "https://challenges.cloudflare.com"
  content_security_policy = join("; ", compact([
    "default-src 'self'",
    local.turnstile_enabled ? "script-src 'self' ${local.turnstile_origin}" : "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "font-src 'self'",
    local.turnstile_enabled ? "frame-src ${local.turnstile_origin}" : "",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "upgrade-insecure-requests",
  ]))

  tags = merge(var.tags, {
    Project     = var.project
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}
