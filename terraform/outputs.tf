# ---------------------------------------------------------------------------
# Outputs: what zappa_settings.json, deploy.yml and a human need
# ---------------------------------------------------------------------------

output "site_url" {
  description = "The site's address."
  value       = "https://${var.domain_name}"
}

output "site_bucket" {
  description = "S3 bucket the built site (build/site) is synced to."
  value       = aws_s3_bucket.site.bucket
}

output "cloudfront_distribution_id" {
  description = "ID of the CloudFront distribution, for `aws cloudfront create-invalidation`."
  value       = aws_cloudfront_distribution.site.id
}

output "cloudfront_domain_name" {
  description = "The distribution's own *.cloudfront.net host name (what the DNS aliases point at)."
  value       = aws_cloudfront_distribution.site.domain_name
}

output "api_enabled" {
  description = "Whether CloudFront routes /api/* to the function URL (false until api_origin_domain is set)."
  value       = local.api_enabled
}

output "lambda_function_name" {
  description = "Name of the function Zappa deploys (\"<project_name>-<stage>\")."
  value       = local.function_name
}

output "lambda_role_arn" {
  description = "Execution role for zappa_settings.json: \"role_arn\" (with \"manage_roles\": false)."
  value       = aws_iam_role.lambda.arn
}

output "lambda_log_group" {
  description = "CloudWatch log group of the function, created here with its retention."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "zappa_bucket" {
  description = "Bucket for zappa_settings.json: \"s3_bucket\" (deployment packages)."
  value       = aws_s3_bucket.zappa.bucket
}

output "dynamodb_table_name" {
  description = "Name of the DynamoDB table."
  value       = aws_dynamodb_table.storage.name
}

output "dynamodb_table_arn" {
  description = "ARN of the DynamoDB table (the only table the function's role may use)."
  value       = aws_dynamodb_table.storage.arn
}

output "counter_shards" {
  description = "Shard count of the hot counters, as validated here."
  value       = var.counter_shards
}

output "storage_url" {
  description = "The app's STORAGE_URL for this table (zappa_settings.json \"environment_variables\")."
  value       = "dynamodb://${aws_dynamodb_table.storage.name}?region=${var.aws_region}&shards=${var.counter_shards}"
}

output "zappa_settings" {
  description = "The stage settings of zappa_settings.json this stack decides, ready to paste."
  value = {
    aws_region         = var.aws_region
    project_name       = var.project
    role_arn           = aws_iam_role.lambda.arn
    manage_roles       = false
    s3_bucket          = aws_s3_bucket.zappa.bucket
    lambda_concurrency = var.lambda_reserved_concurrency
    environment_variables = {
      STORAGE_URL     = "dynamodb://${aws_dynamodb_table.storage.name}?region=${var.aws_region}&shards=${var.counter_shards}"
      ALLOWED_ORIGINS = join(",", var.allowed_origins)
    }
  }
}

output "deploy_role_arn" {
  description = "Role deploy.yml's deploy job assumes in the protected environment (GitHub variable AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}

output "plan_role_arn" {
  description = "Role deploy.yml assumes for pull-request plans (GitHub variable AWS_PLAN_ROLE_ARN)."
  value       = aws_iam_role.plan.arn
}

output "github_oidc_provider_arn" {
  description = "The GitHub OIDC provider (pass it as github_oidc_provider_arn to other stacks in this account)."
  value       = local.github_oidc_provider_arn
}

output "waf_web_acl_arn" {
  description = "ARN of the WAF web ACL, or null when waf_enabled is false."
  value       = one(aws_wafv2_web_acl.edge[*].arn)
}

output "lambda_reserved_concurrency" {
  description = "The function's reserved concurrency, or null for none: deploy.yml writes it into zappa_settings.json as `lambda_concurrency` (Zappa sets it on every update, and removes it when null)."
  value       = var.lambda_reserved_concurrency
}

output "allowed_origins" {
  description = "The app's ALLOWED_ORIGINS (comma-separated): deploy.yml gives it to the function, so the origins the API answers and the /api/* cache key never disagree."
  value       = join(",", var.allowed_origins)
}

output "alerts_topic_arn" {
  description = "SNS topic every alarm and the budget publish to (mailed to alert_email once the subscription is confirmed)."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  description = "CloudWatch alarms watching the function and the table (docs/operations.md, \"Alarms and the budget\")."
  value       = [for alarm in aws_cloudwatch_metric_alarm.alarm : alarm.alarm_name]
}

output "budget_name" {
  description = "Name of the monthly AWS Budget (monthly_budget_usd)."
  value       = aws_budgets_budget.monthly.name
}
