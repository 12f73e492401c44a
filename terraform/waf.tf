# ---------------------------------------------------------------------------
# AWS WAF (optional: var.waf_enabled)
# ---------------------------------------------------------------------------
# A per-IP rate limit on /api/* (the only path that costs a Lambda call and
# DynamoDB requests), then AWS's common and known-bad-inputs rule sets.
# CloudFront web ACLs live in us-east-1.

resource "aws_wafv2_web_acl" "edge" {
  #checkov:skip=CKV2_AWS_31:Full WAF logs would store every visitor's IP; sampled requests and CloudWatch metrics are on for every rule.
  count    = var.waf_enabled ? 1 : 0
  provider = aws.us_east_1

  name        = "${local.name}-edge"
  description = "Rate limit on /api/* and AWS managed rule sets for ${var.domain_name}."
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  rule {
    name     = "api-rate-limit-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300

        scope_down_statement {
          byte_match_statement {
            search_string         = "/api/"
            positional_constraint = "STARTS_WITH"

            field_to_match {
              uri_path {}
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-api-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common-rule-set"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-common-rule-set"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-edge"
    sampled_requests_enabled   = true
  }
}
