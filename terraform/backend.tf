# ---------------------------------------------------------------------------
# Remote state
# ---------------------------------------------------------------------------
# By default state is local (terraform.tfstate in this folder), which is fine
# for one person applying from one machine. Once CI applies (deploy.yml) the
# state must live in S3. Create a bucket for it once, by hand (versioned,
# encrypted, public access blocked), then uncomment the block below and run
# `terraform init -migrate-state`.
#
# `use_lockfile` takes a lock object next to the state (S3 conditional
# writes, Terraform >= 1.10): two applies can never interleave, and no
# DynamoDB lock table is needed.
#
# deploy.yml does not need this file uncommented: it writes an equivalent
# `backend_override.tf` and passes bucket/key/region with -backend-config,
# from the TF_STATE_BUCKET and AWS_REGION repository variables.
#
# terraform {
#   backend "s3" {
#     bucket       = "vitae-terraform-state-123456789012"
#     key          = "vitae/production.tfstate"
#     region       = "eu-west-1"
#     encrypt      = true
#     use_lockfile = true
#   }
# }
