# ---------------------------------------------------------------------------
# Monitoring: alarms and the monthly budget, by e-mail through one topic
# ---------------------------------------------------------------------------
# The owner hears when AWS misbehaves or costs rise. Every alarm and the
# budget publish to the alerts topic, which mails alert_email. docs/operations.md
# ("Alarms and the budget") says what each alarm means and what to do.
#
# The topic is encrypted with its own key: CloudWatch and Budgets cannot
# publish to a topic under the AWS-managed SNS key (its policy cannot name
# them), so a customer-managed key (1 USD a month) is what makes an
# encrypted topic deliver at all.

locals {
  alerts_topic_name = "${local.name}-alerts"
  alarm_prefix      = "${local.name}-"
  budget_name       = "${local.name}-monthly"

  # The DynamoDB operations the function calls: RUNTIME_IAM_ACTIONS of
  # service/storage/dynamodb.py (tests/deploy/test_terraform.py compares them).
  # SystemErrors is reported per operation only.
  dynamodb_operations = ["BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"]

  # Each alarm sums its metrics over 5 minutes and fires at the first count.
  alarms = {
    lambda-errors = {
      description = "The function failed (an exception outside the app's error handling, a timeout, running out of memory, a failed start). An app 500 is an answer, not an error here."
      metrics     = [{ namespace = "AWS/Lambda", name = "Errors", dimensions = { FunctionName = local.function_name } }]
    }
    lambda-throttles = {
      description = "Lambda refused to run the function: the account's or the function's reserved concurrency is used up. Visitors get HTTP 429 from the function URL, through CloudFront."
      metrics     = [{ namespace = "AWS/Lambda", name = "Throttles", dimensions = { FunctionName = local.function_name } }]
    }
    dynamodb-throttles = {
      description = "DynamoDB throttled reads or writes of the table (a hot partition: about 1,000 writes/s per key; raise counter_shards)."
      metrics = [
        { namespace = "AWS/DynamoDB", name = "ReadThrottleEvents", dimensions = { TableName = var.table_name } },
        { namespace = "AWS/DynamoDB", name = "WriteThrottleEvents", dimensions = { TableName = var.table_name } },
      ]
    }
    dynamodb-system-errors = {
      description = "DynamoDB answered the function's requests with a server error (HTTP 500) on AWS's side."
      metrics = [
        for operation in local.dynamodb_operations :
        { namespace = "AWS/DynamoDB", name = "SystemErrors", dimensions = { TableName = var.table_name, Operation = operation } }
      ]
    }
    dynamodb-user-errors = {
      description = "DynamoDB refused requests in this region as invalid (HTTP 400: access denied, a missing table, a bad request). Failed conditions are not counted. Region-wide: other tables count too."
      metrics     = [{ namespace = "AWS/DynamoDB", name = "UserErrors", dimensions = {} }]
    }
  }
}

# --- the topic and its key ------------------------------------------------------------

data "aws_iam_policy_document" "alerts_key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is this one key; kms:* for the account root is AWS's default key policy, without which the key could not be managed again.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this one key; the services get only Decrypt and GenerateDataKey on it, to publish to the alerts topic.
  #checkov:skip=CKV_AWS_356:In a key policy Resource must be "*" and means the key the policy is attached to; nothing else is granted.
  # Without it the key could never be managed again (AWS's default key policy).
  statement {
    sid       = "AccountAdministers"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # SNS encrypts each message with a data key the publisher must be allowed
  # to generate; CloudWatch sends its account and alarm with the request.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # No condition: AWS's key policy for Budgets has none, and one its KMS
  # calls did not carry would drop every budget alert without a word. The
  # topic policy below limits Budgets to this account's budgets, and the
  # key protects nothing but this topic.
  statement {
    sid       = "BudgetsPublish"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "alerts" {
  description             = "Encrypts the ${local.alerts_topic_name} SNS topic (alarms and budget alerts)."
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.alerts_key.json
}

resource "aws_sns_topic" "alerts" {
  name              = local.alerts_topic_name
  display_name      = "${local.name} alerts"
  kms_master_key_id = aws_kms_key.alerts.arn
}

data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "ThisStacksAlarmsPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.alarm_prefix}*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "ThisAccountsBudgetsPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:budgets::${local.account_id}:*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

# Stays "pending confirmation" until the link in AWS's first mail is followed.
resource "aws_sns_topic_subscription" "alert_email" {
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

# --- alarms ---------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "alarm" {
  for_each = local.alarms

  alarm_name        = "${local.alarm_prefix}${each.key}"
  alarm_description = "${each.value.description} What to do: docs/operations.md, \"Alarms and the budget\"."

  # One expression for every alarm: the sum of its metrics per 5 minutes
  # (a missing series adds nothing).
  dynamic "metric_query" {
    for_each = each.value.metrics

    content {
      id = "m${metric_query.key}"

      metric {
        namespace   = metric_query.value.namespace
        metric_name = metric_query.value.name
        dimensions  = metric_query.value.dimensions
        period      = 300
        stat        = "Sum"
      }
    }
  }

  metric_query {
    id          = "total"
    expression  = "SUM(METRICS())"
    label       = each.key
    return_data = true
  }

  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  # No data is good news: DynamoDB reports these metrics only when they count.
  treat_missing_data = "notBreaching"

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alerts.arn]
  ok_actions      = [aws_sns_topic.alerts.arn]

  depends_on = [aws_sns_topic_policy.alerts]
}

# --- the monthly budget ---------------------------------------------------------------

# The whole account's cost (tag filters need the tags activated in Billing
# first): on an account that holds only this site, that is the site.
resource "aws_budgets_budget" "monthly" {
  name         = local.budget_name
  budget_type  = "COST"
  limit_amount = tostring(var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = 80
    threshold_type            = "PERCENTAGE"
    notification_type         = "ACTUAL"
    subscriber_sns_topic_arns = [aws_sns_topic.alerts.arn]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = 100
    threshold_type            = "PERCENTAGE"
    notification_type         = "FORECASTED"
    subscriber_sns_topic_arns = [aws_sns_topic.alerts.arn]
  }

  # Budgets checks that it may publish when the notification is created.
  depends_on = [aws_sns_topic_policy.alerts]
}
