# ---------------------------------------------------------------------------
# DynamoDB: the app's single table (service/storage/dynamodb.py)
# ---------------------------------------------------------------------------
# Key schema and TTL attribute are the backend's: pk (S) + sk (S), items
# expire through `expires_at` (epoch seconds), no indexes. Recorded page
# views (`l#views`) expire through it 47 h after they are written: the
# schedule folds them within a minute (no stream: Zappa's `events` run the
# fold). On-demand billing costs nothing while nobody visits.

resource "aws_dynamodb_table" "storage" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-managed key (aws/dynamodb); a customer-managed key costs 1 USD a month plus requests and guards counters, caches and queued contact messages no one else's key policy needs to reach.
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = var.environment == "production"
}
