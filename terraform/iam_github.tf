# ---------------------------------------------------------------------------
# GitHub Actions: OIDC provider, deploy role (environment), plan role (pull requests)
# ---------------------------------------------------------------------------
# No AWS keys are stored in GitHub. A workflow job exchanges its OIDC token
# for short-lived credentials of one of two roles:
#
#   deploy  jobs in the protected environment only (its deployment-branch
#           rule and reviewers apply): terraform apply, zappa update/deploy,
#           site sync, CloudFront invalidation.
#   plan    this repository's pull requests: terraform plan. It reads the
#           settings a plan refreshes and nothing that holds the function's
#           secrets: no lambda:GetFunction / GetFunctionConfiguration (their
#           answers carry the function's environment: SECRET_KEY, tokens).
#           The stack has no aws_lambda_* resource or data source, so the
#           plan's one Lambda call is the function URL lookup
#           (.github/scripts/api-origin-domain.sh: GetFunctionUrlConfig).
#
# What CI may do, and what it may not:
#   - it creates and updates the stack's resources, scoped to their names;
#   - it never writes IAM (roles, policies, the OIDC provider), the alerts
#     key or the alert e-mail subscription, and never deletes
#     infrastructure. A workflow, even a compromised one, cannot widen its
#     own rights or the function's, redirect the alerts, nor tear the site
#     down. Changes to lambda.tf or this file, to the key or the address,
#     and destroys, are applied by an administrator from a workstation
#     (docs/infrastructure.md).

locals {
  # An account holds one provider per URL: a second stack (or an earlier
  # setup) passes the existing one instead of failing with EntityAlreadyExists.
  github_oidc_provider_arn = (
    var.github_oidc_provider_arn != null
    ? var.github_oidc_provider_arn
    : one(aws_iam_openid_connect_provider.github[*].arn)
  )

  site_bucket_arn  = "arn:${local.partition}:s3:::${local.site_bucket}"
  zappa_bucket_arn = "arn:${local.partition}:s3:::${local.zappa_bucket}"
  logs_bucket_arn  = "arn:${local.partition}:s3:::${local.logs_bucket}"
  table_arn        = "arn:${local.partition}:dynamodb:${var.aws_region}:${local.account_id}:table/${var.table_name}"
  log_group_arn    = "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:${local.log_group}"
  state_bucket_arn = var.terraform_state_bucket == null ? null : "arn:${local.partition}:s3:::${var.terraform_state_bucket}"
  alerts_topic_arn = "arn:${local.partition}:sns:${var.aws_region}:${local.account_id}:${local.alerts_topic_name}"
  alarms_arn       = "arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.alarm_prefix}*"
  budget_arn       = "arn:${local.partition}:budgets::${local.account_id}:budget/${local.budget_name}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

# --- who may assume the roles ---------------------------------------------------

data "aws_iam_policy_document" "deploy_assume_role" {
  statement {
    sid     = "GitHubProtectedEnvironment"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only a job in the environment has this subject; its deployment-branch
    # rule limits it to main and its reviewers approve each run. The ref
    # subject (`ref:refs/heads/main`) is not trusted: any workflow on main
    # could then assume the role without the environment's approval.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:environment:${var.github_environment}"]
    }
  }
}

data "aws_iam_policy_document" "plan_assume_role" {
  statement {
    sid     = "GitHubPullRequests"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:pull_request"]
    }
  }
}

resource "aws_iam_role" "deploy" {
  name                 = "${local.name}-deploy"
  description          = "GitHub Actions deploy of ${var.github_repository} (environment ${var.github_environment} only)."
  assume_role_policy   = data.aws_iam_policy_document.deploy_assume_role.json
  max_session_duration = 3600
}

resource "aws_iam_role" "plan" {
  name                 = "${local.name}-plan"
  description          = "GitHub Actions terraform plan for pull requests of ${var.github_repository} (read-only)."
  assume_role_policy   = data.aws_iam_policy_document.plan_assume_role.json
  max_session_duration = 3600
}

# --- release: what a deploy does besides Terraform ---------------------------------

data "aws_iam_policy_document" "release" {
  statement {
    sid       = "ZappaBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.zappa_bucket_arn]
  }

  statement {
    sid       = "ZappaPackages"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.zappa_bucket_arn}/*"]
  }

  # zappa deploy (first time) and zappa update, for this one function.
  statement {
    sid    = "ZappaFunction"
    effect = "Allow"
    actions = [
      "lambda:AddPermission",
      "lambda:CreateAlias",
      "lambda:CreateFunction",
      "lambda:CreateFunctionUrlConfig",
      "lambda:DeleteFunctionConcurrency",
      "lambda:GetAlias",
      "lambda:GetFunction",
      "lambda:GetFunctionConcurrency",
      "lambda:GetFunctionConfiguration",
      "lambda:GetFunctionUrlConfig",
      "lambda:GetPolicy",
      "lambda:GetProvisionedConcurrencyConfig",
      "lambda:ListFunctionUrlConfigs",
      "lambda:ListTags",
      "lambda:ListVersionsByFunction",
      "lambda:PublishVersion",
      "lambda:PutFunctionConcurrency",
      "lambda:RemovePermission",
      "lambda:TagResource",
      "lambda:UpdateAlias",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
      "lambda:UpdateFunctionUrlConfig",
    ]
    resources = [local.function_arn, "${local.function_arn}:*"]
  }

  # Zappa prunes old published versions (num_retained_versions). Only the
  # qualified ARN is granted: a version can go, the function cannot.
  statement {
    sid       = "ZappaPruneVersions"
    effect    = "Allow"
    actions   = ["lambda:DeleteFunction"]
    resources = ["${local.function_arn}:*"]
  }

  # Lambda takes the execution role; Zappa also names it in its keep_warm
  # EventBridge rule (PutRule RoleArn), which passes it to EventBridge.
  statement {
    sid       = "PassExecutionRole"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.lambda.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com", "events.amazonaws.com"]
    }
  }

  # Zappa's keep_warm schedule: rules named "<function>-...".
  statement {
    sid    = "ZappaKeepWarmRules"
    effect = "Allow"
    actions = [
      "events:DeleteRule",
      "events:DescribeRule",
      "events:ListTargetsByRule",
      "events:PutRule",
      "events:PutTargets",
      "events:RemoveTargets",
    ]
    resources = ["arn:${local.partition}:events:${var.aws_region}:${local.account_id}:rule/${local.function_name}-*"]
  }

  statement {
    sid       = "ZappaFindRules"
    effect    = "Allow"
    actions   = ["events:ListRuleNamesByTarget"]
    resources = ["arn:${local.partition}:events:${var.aws_region}:${local.account_id}:rule/*"]
  }

  statement {
    sid       = "SiteBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.site_bucket_arn]
  }

  statement {
    sid       = "SiteFiles"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.site_bucket_arn}/*"]
  }

  statement {
    sid       = "InvalidateThisDistribution"
    effect    = "Allow"
    actions   = ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"]
    resources = [aws_cloudfront_distribution.site.arn]
  }
}

# --- Terraform: read everything the stack holds (plan and deploy) -------------------

data "aws_iam_policy_document" "infrastructure_read" {
  statement {
    sid    = "BucketSettingsRead"
    effect = "Allow"
    actions = [
      "s3:GetAccelerateConfiguration",
      "s3:GetBucket*",
      "s3:GetEncryptionConfiguration",
      "s3:GetLifecycleConfiguration",
      "s3:GetReplicationConfiguration",
      "s3:ListBucket",
    ]
    resources = [local.site_bucket_arn, local.zappa_bucket_arn, local.logs_bucket_arn]
  }

  statement {
    sid    = "CloudFrontRead"
    effect = "Allow"
    actions = [
      "cloudfront:DescribeFunction",
      "cloudfront:GetCachePolicy",
      "cloudfront:GetDistribution",
      "cloudfront:GetDistributionConfig",
      "cloudfront:GetFunction",
      "cloudfront:GetOriginAccessControl",
      "cloudfront:GetOriginRequestPolicy",
      "cloudfront:GetResponseHeadersPolicy",
      "cloudfront:ListTagsForResource",
    ]
    resources = ["arn:${local.partition}:cloudfront::${local.account_id}:*"]
  }

  # Looking the managed policies up by name lists them; list calls have no
  # resource to scope to.
  statement {
    sid    = "CloudFrontList"
    effect = "Allow"
    actions = [
      "cloudfront:ListCachePolicies",
      "cloudfront:ListOriginRequestPolicies",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "CertificateRead"
    effect    = "Allow"
    actions   = ["acm:DescribeCertificate", "acm:ListTagsForCertificate"]
    resources = ["arn:${local.partition}:acm:us-east-1:${local.account_id}:certificate/*"]
  }

  statement {
    sid       = "ZoneRead"
    effect    = "Allow"
    actions   = ["route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ListTagsForResource"]
    resources = [data.aws_route53_zone.site.arn]
  }

  statement {
    sid       = "ZoneChangeStatus"
    effect    = "Allow"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }

  statement {
    sid       = "ZoneLookup"
    effect    = "Allow"
    actions   = ["route53:ListHostedZones", "route53:ListHostedZonesByName"]
    resources = ["*"]
  }

  statement {
    sid    = "TableSettingsRead"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeContinuousBackups",
      "dynamodb:DescribeKinesisStreamingDestination",
      "dynamodb:DescribeTable",
      "dynamodb:DescribeTimeToLive",
      "dynamodb:ListTagsOfResource",
    ]
    resources = [local.table_arn]
  }

  statement {
    sid       = "LogGroupLookup"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"]
  }

  statement {
    sid       = "LogGroupRead"
    effect    = "Allow"
    actions   = ["logs:ListTagsForResource", "logs:ListTagsLogGroup"]
    resources = [local.log_group_arn, "${local.log_group_arn}:*"]
  }

  statement {
    sid    = "StackIamRead"
    effect = "Allow"
    actions = [
      "iam:GetOpenIDConnectProvider",
      "iam:GetPolicy",
      "iam:GetPolicyVersion",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListPolicyVersions",
      "iam:ListRolePolicies",
    ]
    resources = [
      local.github_oidc_provider_arn,
      "arn:${local.partition}:iam::${local.account_id}:role/${local.name}-*",
      "arn:${local.partition}:iam::${local.account_id}:policy/${local.name}-*",
    ]
  }

  statement {
    sid       = "WebAclRead"
    effect    = "Allow"
    actions   = ["wafv2:GetWebACL", "wafv2:GetLoggingConfiguration", "wafv2:ListTagsForResource"]
    resources = ["arn:${local.partition}:wafv2:us-east-1:${local.account_id}:global/webacl/${local.name}-edge/*"]
  }

  # The plan reads the function URL to fill in api_origin_domain, and only
  # that: GetFunction and GetFunctionConfiguration answer with the
  # function's environment, its secrets included (the deploy role's release
  # policy has them; the plan role must not).
  statement {
    sid       = "FunctionUrlRead"
    effect    = "Allow"
    actions   = ["lambda:GetFunctionUrlConfig"]
    resources = [local.function_arn]
  }

  statement {
    sid       = "AlertsTopicRead"
    effect    = "Allow"
    actions   = ["sns:GetTopicAttributes", "sns:ListTagsForResource"]
    resources = [local.alerts_topic_arn]
  }

  # No resource type: IAM cannot scope it to the topic's subscriptions.
  statement {
    sid       = "AlertsSubscriptionRead"
    effect    = "Allow"
    actions   = ["sns:GetSubscriptionAttributes"]
    resources = ["*"]
  }

  statement {
    sid       = "AlertsKeyRead"
    effect    = "Allow"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = [aws_kms_key.alerts.arn]
  }

  statement {
    sid       = "AlarmsRead"
    effect    = "Allow"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
    resources = [local.alarms_arn]
  }

  statement {
    sid       = "BudgetRead"
    effect    = "Allow"
    actions   = ["budgets:ListTagsForResource", "budgets:ViewBudget"]
    resources = [local.budget_arn]
  }
}

# --- Terraform: create and update (deploy only; no IAM, no deletes) -----------------

data "aws_iam_policy_document" "infrastructure_write" {
  statement {
    sid    = "BucketSettingsWrite"
    effect = "Allow"
    actions = [
      "s3:CreateBucket",
      "s3:PutBucketAcl",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = [local.site_bucket_arn, local.zappa_bucket_arn, local.logs_bucket_arn]
  }

  statement {
    sid    = "CloudFrontWrite"
    effect = "Allow"
    actions = [
      "cloudfront:CreateCachePolicy",
      "cloudfront:CreateDistribution",
      "cloudfront:CreateFunction",
      "cloudfront:CreateOriginAccessControl",
      "cloudfront:CreateResponseHeadersPolicy",
      "cloudfront:PublishFunction",
      "cloudfront:TagResource",
      "cloudfront:UntagResource",
      "cloudfront:UpdateCachePolicy",
      "cloudfront:UpdateDistribution",
      "cloudfront:UpdateFunction",
      "cloudfront:UpdateOriginAccessControl",
      "cloudfront:UpdateResponseHeadersPolicy",
    ]
    resources = ["arn:${local.partition}:cloudfront::${local.account_id}:*"]
  }

  statement {
    sid       = "CertificateTags"
    effect    = "Allow"
    actions   = ["acm:AddTagsToCertificate"]
    resources = ["arn:${local.partition}:acm:us-east-1:${local.account_id}:certificate/*"]
  }

  # acm:RequestCertificate has no resource type (the certificate does not
  # exist yet), so only "*" grants it; the conditions scope it instead: DNS
  # validation, and only the site's own names.
  statement {
    sid       = "CertificateRequest"
    effect    = "Allow"
    actions   = ["acm:RequestCertificate"]
    resources = ["*"]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "acm:DomainNames"
      values   = local.aliases
    }

    condition {
      test     = "Null"
      variable = "acm:DomainNames"
      values   = ["false"]
    }

    condition {
      test     = "StringEquals"
      variable = "acm:ValidationMethod"
      values   = ["DNS"]
    }
  }

  # Only the site's names and the certificate's validation records.
  statement {
    sid       = "SiteRecords"
    effect    = "Allow"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [data.aws_route53_zone.site.arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = [var.domain_name, local.www_domain, "_*.${var.domain_name}"]
    }
  }

  statement {
    sid    = "TableSettingsWrite"
    effect = "Allow"
    actions = [
      "dynamodb:CreateTable",
      "dynamodb:TagResource",
      "dynamodb:UntagResource",
      "dynamodb:UpdateContinuousBackups",
      "dynamodb:UpdateTable",
      "dynamodb:UpdateTimeToLive",
    ]
    resources = [local.table_arn]
  }

  statement {
    sid    = "LogGroupWrite"
    effect = "Allow"
    actions = [
      "logs:CreateLogGroup",
      "logs:PutRetentionPolicy",
      "logs:TagLogGroup",
      "logs:TagResource",
      "logs:UntagResource",
    ]
    resources = [local.log_group_arn, "${local.log_group_arn}:*"]
  }

  # Alarms, the topic's settings and the budget; the key, its policy and the
  # e-mail subscription are applied by an administrator.
  statement {
    sid       = "AlarmsWrite"
    effect    = "Allow"
    actions   = ["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
    resources = [local.alarms_arn]
  }

  statement {
    sid       = "AlertsTopicWrite"
    effect    = "Allow"
    actions   = ["sns:CreateTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource"]
    resources = [local.alerts_topic_arn]
  }

  statement {
    sid       = "BudgetWrite"
    effect    = "Allow"
    actions   = ["budgets:ModifyBudget", "budgets:TagResource", "budgets:UntagResource"]
    resources = [local.budget_arn]
  }

  statement {
    sid    = "WebAclWrite"
    effect = "Allow"
    actions = [
      "wafv2:CreateWebACL",
      "wafv2:TagResource",
      "wafv2:UntagResource",
      "wafv2:UpdateWebACL",
    ]
    resources = [
      "arn:${local.partition}:wafv2:us-east-1:${local.account_id}:global/webacl/${local.name}-edge/*",
      "arn:${local.partition}:wafv2:us-east-1:*:global/managedruleset/*/*",
    ]
  }
}

# --- Terraform state -----------------------------------------------------------------

data "aws_iam_policy_document" "state_write" {
  count = var.terraform_state_bucket == null ? 0 : 1

  statement {
    sid       = "StateBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  statement {
    sid       = "StateObject"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.state_bucket_arn}/${var.terraform_state_key}"]
  }

  statement {
    sid       = "StateLock"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.state_bucket_arn}/${var.terraform_state_key}.tflock"]
  }
}

data "aws_iam_policy_document" "state_read" {
  count = var.terraform_state_bucket == null ? 0 : 1

  statement {
    sid       = "StateBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  statement {
    sid       = "StateObject"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.state_bucket_arn}/${var.terraform_state_key}"]
  }
}

# --- policies and attachments ----------------------------------------------------------

resource "aws_iam_policy" "release" {
  name        = "${local.name}-release"
  description = "Zappa update of ${local.function_name}, site upload, invalidation of the ${local.name} distribution."
  policy      = data.aws_iam_policy_document.release.json
}

resource "aws_iam_policy" "infrastructure_read" {
  name        = "${local.name}-infrastructure-read"
  description = "Read the settings of the ${local.name} stack's resources (terraform plan)."
  policy      = data.aws_iam_policy_document.infrastructure_read.json
}

resource "aws_iam_policy" "infrastructure_write" {
  name        = "${local.name}-infrastructure-write"
  description = "Create and update the ${local.name} stack's resources; no IAM, no deletes."
  policy      = data.aws_iam_policy_document.infrastructure_write.json
}

resource "aws_iam_policy" "state_write" {
  count = var.terraform_state_bucket == null ? 0 : 1

  name        = "${local.name}-state-write"
  description = "Read and write the ${local.name} Terraform state and its lock."
  policy      = data.aws_iam_policy_document.state_write[0].json
}

resource "aws_iam_policy" "state_read" {
  count = var.terraform_state_bucket == null ? 0 : 1

  name        = "${local.name}-state-read"
  description = "Read the ${local.name} Terraform state."
  policy      = data.aws_iam_policy_document.state_read[0].json
}

resource "aws_iam_role_policy_attachment" "deploy" {
  for_each = merge(
    {
      release              = aws_iam_policy.release.arn
      infrastructure_read  = aws_iam_policy.infrastructure_read.arn
      infrastructure_write = aws_iam_policy.infrastructure_write.arn
    },
    var.terraform_state_bucket == null ? {} : { state_write = aws_iam_policy.state_write[0].arn },
  )

  role       = aws_iam_role.deploy.name
  policy_arn = each.value
}

resource "aws_iam_role_policy_attachment" "plan" {
  for_each = merge(
    { infrastructure_read = aws_iam_policy.infrastructure_read.arn },
    var.terraform_state_bucket == null ? {} : { state_read = aws_iam_policy.state_read[0].arn },
  )

  role       = aws_iam_role.plan.name
  policy_arn = each.value
}
