# ---------------------------------------------------------------------------
# Site bucket: the built site (make site -> build/site), read only by CloudFront
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "site" {
  #checkov:skip=CKV_AWS_18:Only CloudFront reads this bucket; its access logs (var.access_logging) are the access record, S3 server logs would duplicate them.
  #checkov:skip=CKV_AWS_144:The content is rebuilt from git by every deploy; a replica in a second region would hold nothing the repository does not.
  #checkov:skip=CKV_AWS_145:Public web pages: SSE-S3 encrypts them at rest; a customer-managed KMS key would add a monthly fee and a key policy for CloudFront without protecting anything secret.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to uploads; deploys invalidate CloudFront explicitly.
  bucket = local.site_bucket
}

resource "aws_s3_bucket_public_access_block" "site" {
  bucket = aws_s3_bucket.site.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "site" {
  bucket = aws_s3_bucket.site.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "site" {
  bucket = aws_s3_bucket.site.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# `aws s3 sync --delete` on every deploy leaves the replaced files as
# noncurrent versions: keep them a month for rollbacks, then let them go.
resource "aws_s3_bucket_lifecycle_configuration" "site" {
  bucket = aws_s3_bucket.site.id

  rule {
    id     = "expire-replaced-files"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "site_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.site.arn,
      "${aws_s3_bucket.site.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Origin Access Control: CloudFront signs its requests, and only requests
  # made on behalf of this one distribution may read. No s3:ListBucket, so a
  # missing key answers 403, which the distribution turns into the 404 page.
  statement {
    sid       = "CloudFrontDistributionReadOnly"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.site.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.site.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "site" {
  bucket = aws_s3_bucket.site.id
  policy = data.aws_iam_policy_document.site_bucket.json

  # A bucket policy put before the public access block could be judged
  # against the account defaults; order them explicitly.
  depends_on = [aws_s3_bucket_public_access_block.site]
}

# ---------------------------------------------------------------------------
# Zappa bucket: where `zappa update` uploads the Lambda package
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "zappa" {
  #checkov:skip=CKV_AWS_18:Holds only Zappa's transient deployment packages; CloudTrail records who uploads them.
  #checkov:skip=CKV_AWS_144:A package is rebuilt from git on every deploy; replicating it to a second region would protect nothing.
  #checkov:skip=CKV_AWS_145:SSE-S3 encrypts the packages at rest; they contain the open-source code and its dependencies, no secrets (those are function environment variables).
  #checkov:skip=CKV2_AWS_62:Nothing reacts to uploads; Zappa calls Lambda's UpdateFunctionCode itself.
  bucket = local.zappa_bucket
}

resource "aws_s3_bucket_public_access_block" "zappa" {
  bucket = aws_s3_bucket.zappa.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "zappa" {
  bucket = aws_s3_bucket.zappa.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "zappa" {
  bucket = aws_s3_bucket.zappa.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "zappa" {
  bucket = aws_s3_bucket.zappa.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Zappa deletes each package once Lambda has taken it; versioning keeps the
# deleted ones a week, which is enough to inspect a bad deploy.
resource "aws_s3_bucket_lifecycle_configuration" "zappa" {
  bucket = aws_s3_bucket.zappa.id

  rule {
    id     = "expire-deleted-packages"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "zappa_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.zappa.arn,
      "${aws_s3_bucket.zappa.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "zappa" {
  bucket = aws_s3_bucket.zappa.id
  policy = data.aws_iam_policy_document.zappa_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.zappa]
}

# ---------------------------------------------------------------------------
# Access-log bucket (only with var.access_logging)
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the log bucket; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs expire after log_retention_days; a cross-region copy would only keep visitor IPs longer.
  #checkov:skip=CKV_AWS_145:CloudFront standard logging delivers only to SSE-S3 buckets unless the key policy grants the log-delivery service; SSE-S3 still encrypts at rest.
  #checkov:skip=CKV2_AWS_62:Nothing consumes new log files as they arrive; they are read on demand and expire after log_retention_days.
  count = var.access_logging ? 1 : 0

  bucket = local.logs_bucket
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count = var.access_logging ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  #checkov:skip=CKV2_AWS_65:CloudFront standard logging writes through an ACL grant to its log-delivery account, which needs ACLs enabled (BucketOwnerPreferred); the public access block still forbids public ACLs.
  count = var.access_logging ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id

  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  count = var.access_logging ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count = var.access_logging ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count = var.access_logging ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "logs_bucket" {
  count = var.access_logging ? 1 : 0

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.logs[0].arn,
      "${aws_s3_bucket.logs[0].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  count = var.access_logging ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id
  policy = data.aws_iam_policy_document.logs_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}
