# ---------------------------------------------------------------------------
# CloudFront: the site from S3, /api/* from the Lambda function URL
# ---------------------------------------------------------------------------

data "aws_cloudfront_cache_policy" "caching_optimized" {
  name = "Managed-CachingOptimized"
}

data "aws_cloudfront_origin_request_policy" "all_viewer_except_host_header" {
  name = "Managed-AllViewerExceptHostHeader"
}

data "aws_cloudfront_cache_policy" "caching_disabled" {
  name = "Managed-CachingDisabled"
}

resource "aws_cloudfront_origin_access_control" "site" {
  name                              = "${local.name}-site"
  description                       = "CloudFront signs its requests to the ${local.name} site bucket."
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Nothing under /api/* is cached unless the API says so: min and default TTL
# are 0, so a response without Cache-Control (visitor counts, contact form
# answers) always goes to the function, while a response the API marks
# `public, s-maxage=N` (GitHub activity, blog posts, now playing) is served
# from the edge for N seconds (at most max_ttl). That is the difference
# between paying for every /api read and paying for one per edge per N
# seconds, which is what keeps the top of the cost table down. Managed
# CachingDisabled could never cache. Only the query parameters the API reads
# are in the key (tests/test_terraform.py compares them with service/), so
# `&x=N` cannot turn one cached answer into a new origin call; cookies and
# headers are not either: the API answers the same to everyone for what it
# lets CloudFront cache.
resource "aws_cloudfront_cache_policy" "api" {
  name        = "${local.name}-api"
  comment     = "Honours the API's Cache-Control; caches nothing by default."
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = 3600

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }

    # With ALLOWED_ORIGINS set the API answers each listed origin with its
    # own Access-Control-Allow-Origin and `Vary: Origin`, which CloudFront
    # ignores: Origin must be in the key, or one origin's cached answer
    # reaches another (whose browser then refuses it). Without other
    # origins every answer is the same, and the key stays one per URL.
    headers_config {
      header_behavior = local.cors_enabled ? "whitelist" : "none"

      dynamic "headers" {
        for_each = local.cors_enabled ? [["Origin"]] : []

        content {
          items = headers.value
        }
      }
    }

    query_strings_config {
      query_string_behavior = "whitelist"

      query_strings {
        items = ["days", "limit", "page", "path", "per_page", "q", "tag"]
      }
    }
  }
}

# The blog's pages, feeds and sitemap are rendered by the function from the
# cached GitHub issues (service/blog/pages.py), which sets
# `Cache-Control: public, max-age=0, s-maxage=<what is left of the blog
# TTL>, stale-while-revalidate=<TTL>, stale-if-error=86400`. This policy
# honours those headers up to the blog TTL, so the function sees about one
# request per page per TTL per edge, not one per visitor; browsers
# revalidate with the page's ETag. Only the query strings the pages read
# are in the key, so ?utm_source=... cannot split the cache.
resource "aws_cloudfront_cache_policy" "blog" {
  name        = "${local.name}-blog"
  comment     = "Honours the blog pages' Cache-Control up to the blog TTL."
  min_ttl     = 0
  default_ttl = var.blog_cache_ttl
  max_ttl     = var.blog_cache_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }

    headers_config {
      header_behavior = "none"
    }

    query_strings_config {
      query_string_behavior = "whitelist"

      query_strings {
        items = ["n", "page", "q", "tag", "v"]
      }
    }
  }
}

resource "aws_cloudfront_response_headers_policy" "site" {
  name    = "${local.name}-security-headers"
  comment = "HSTS (preload), the site's Content-Security-Policy, nosniff, no framing, referrer policy."

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }

    content_security_policy {
      content_security_policy = local.content_security_policy
      override                = true
    }

    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
  }

  custom_headers_config {
    items {
      header   = "Permissions-Policy"
      value    = "camera=(), microphone=(), geolocation=()"
      override = true
    }
  }
}

# One template, two functions: the site's (www redirect and directory
# indexes) and the function origin's (www redirect only: /blog/ must reach
# the app as /blog/). Every behaviour redirects www.
resource "aws_cloudfront_function" "viewer_request" {
  name    = "${local.name}-viewer-request"
  runtime = "cloudfront-js-2.0"
  comment = "Redirects www to the apex; serves index.html for paths ending in /."
  publish = true
  code = templatefile("${path.module}/functions/viewer-request.js", {
    apex_domain = var.domain_name
    www_domain  = local.www_domain
    serve_index = true
  })
}

resource "aws_cloudfront_function" "www_redirect" {
  name    = "${local.name}-www-redirect"
  runtime = "cloudfront-js-2.0"
  comment = "Redirects www to the apex (the function origin's behaviours)."
  publish = true
  code = templatefile("${path.module}/functions/viewer-request.js", {
    apex_domain = var.domain_name
    www_domain  = local.www_domain
    serve_index = false
  })
}

resource "aws_cloudfront_distribution" "site" {
  #checkov:skip=CKV2_AWS_47:WAF is optional (var.waf_enabled, waf.tf), off by default because it costs more a month than the rest of the stack at small scale; when on, its web ACL includes AWSManagedRulesKnownBadInputsRuleSet (Log4j).
  #checkov:skip=CKV_AWS_310:One origin per behaviour by design: the static site has no second copy, and a failover origin group cannot carry POST to the API.
  #checkov:skip=CKV_AWS_374:A public resume is meant to be readable from every country.
  enabled             = true
  comment             = "${local.name}: ${var.domain_name}"
  aliases             = local.aliases
  default_root_object = "index.html"
  price_class         = var.price_class
  http_version        = "http2and3"
  is_ipv6_enabled     = true
  web_acl_id          = var.waf_enabled ? aws_wafv2_web_acl.edge[0].arn : null

  origin {
    origin_id                = local.site_origin_id
    domain_name              = aws_s3_bucket.site.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.site.id
  }

  # The API origin exists once Zappa has created the function URL.
  dynamic "origin" {
    for_each = local.api_enabled ? [var.api_origin_domain] : []

    content {
      origin_id   = local.api_origin_id
      domain_name = origin.value

      custom_origin_config {
        http_port              = 80
        https_port             = 443
        origin_protocol_policy = "https-only"
        origin_ssl_protocols   = ["TLSv1.2"]
        origin_read_timeout    = 30
      }

      # The app refuses every request without this header (ORIGIN_SECRET),
      # so the public function URL is useless to anyone but CloudFront.
      custom_header {
        name  = "X-Origin-Verify"
        value = var.origin_secret
      }

      # The origin request policy forwards every viewer header except Host
      # (a function URL only answers to its own host name); the app's Lambda
      # entry (service/aws_lambda.py) restores the viewer's host from this
      # header for url_for/redirects.
      custom_header {
        name  = "cloudfront-host"
        value = var.domain_name
      }
    }
  }

  default_cache_behavior {
    target_origin_id           = local.site_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_optimized.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.site.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.viewer_request.arn
    }
  }

  # The owner's stats (private by default, behind a cookie or a Bearer token):
  # never cached, matched before /api/*.
  dynamic "ordered_cache_behavior" {
    for_each = local.api_enabled ? ["/stats", "/stats/*", "/api/stats*"] : []

    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = local.api_origin_id
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
      origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host_header.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.site.id

      dynamic "function_association" {
        for_each = local.www_redirect_functions

        content {
          event_type   = "viewer-request"
          function_arn = function_association.value
        }
      }
    }
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.api_enabled ? ["/api/*"] : []

    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = local.api_origin_id
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = aws_cloudfront_cache_policy.api.id
      origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host_header.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.site.id

      dynamic "function_association" {
        for_each = local.www_redirect_functions

        content {
          event_type   = "viewer-request"
          function_arn = function_association.value
        }
      }
    }
  }

  # The blog is rendered by the function (the build uploads no blog pages);
  # static files stay on S3. Only the www redirect runs here: the site's
  # function would turn /blog/ into /blog/index.html.
  dynamic "ordered_cache_behavior" {
    for_each = local.api_enabled ? local.blog_paths : []

    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = local.api_origin_id
      viewer_protocol_policy     = "redirect-to-https"
      allowed_methods            = ["GET", "HEAD"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = aws_cloudfront_cache_policy.blog.id
      origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host_header.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.site.id

      dynamic "function_association" {
        for_each = local.www_redirect_functions

        content {
          event_type   = "viewer-request"
          function_arn = function_association.value
        }
      }
    }
  }

  # The bucket grants no s3:ListBucket, so a missing file answers 403: show
  # the site's 404 page with a 404 status. Only 403 is mapped, because error
  # pages apply to every behaviour and the API's own JSON 404s must pass.
  custom_error_response {
    error_code            = 403
    response_code         = 404
    response_page_path    = "/404.html"
    error_caching_min_ttl = 60
  }

  dynamic "logging_config" {
    for_each = var.access_logging ? [aws_s3_bucket.logs[0].bucket_domain_name] : []

    content {
      bucket          = logging_config.value
      include_cookies = false
      prefix          = "cloudfront/"
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = aws_acm_certificate_validation.site.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  depends_on = [aws_s3_bucket_ownership_controls.logs]
}
