# Terraform and provider versions. The AWS provider is pinned to one major
# version; Dependabot proposes updates, and the CI `terraform` job runs
# `init -backend=false` + `validate` against the new version before merge.

terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.20"
    }
  }
}
