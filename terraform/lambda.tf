# ---------------------------------------------------------------------------
# The Lambda function's execution role and log group
# ---------------------------------------------------------------------------
# Zappa creates and updates the function itself (`manage_roles: false`,
# `role_arn` = the lambda_role_arn output); this stack owns what the function
# is allowed to do. Nothing here is `*`: logs go to its own log group, and
# the DynamoDB actions are exactly RUNTIME_IAM_ACTIONS of
# service/storage/dynamodb.py (tests/test_terraform.py compares the two) on
# the one table.

resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_158:Encrypted by CloudWatch Logs' own service key; a customer-managed key adds a monthly fee and a key policy for request logs that are kept for weeks, not years.
  #checkov:skip=CKV_AWS_338:Request logs can hold visitor IP addresses; they are kept var.log_retention_days (30 by default), deliberately less than a year.
  name              = local.log_group
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    sid     = "LambdaService"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name                 = "${local.name}-lambda"
  description          = "Execution role of the ${local.function_name} function (Zappa, manage_roles false)."
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume_role.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "WriteOwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  statement {
    sid    = "UseOwnTable"
    effect = "Allow"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.storage.arn]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${local.name}-lambda"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}
