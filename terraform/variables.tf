# ---------------------------------------------------------------------------
# Site and environment
# ---------------------------------------------------------------------------

variable "project" {
  description = "Project name, the prefix of every resource name. Must equal `project_name` in zappa_settings.json: the Lambda function Zappa creates is named \"<project>-<environment>\"."
  type        = string
  default     = "vitae"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment, the Zappa stage this stack serves (`dev` or `production`). Production turns on DynamoDB deletion protection."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["dev", "production"], var.environment)
    error_message = "environment must be \"dev\" or \"production\" (the Zappa stages)."
  }
}

variable "aws_region" {
  description = "Region of the bucket, the table, the function and its logs. CloudFront, its certificate and its WAF web ACL are global (us-east-1) whatever this is."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region code such as \"eu-west-1\"."
  }
}

variable "domain_name" {
  description = "The site's apex domain name, lowercase and without a trailing dot (e.g. \"jane.example\"). `www.<domain_name>` is added as a redirect when www_redirect is true."
  type        = string

  validation {
    condition = (
      can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.domain_name))
      && length(var.domain_name) <= 253
      && !startswith(var.domain_name, "www.")
    )
    error_message = "domain_name must be a lowercase DNS name without scheme, path, trailing dot or leading \"www.\" (e.g. \"jane.example\")."
  }
}

variable "route53_zone_name" {
  description = "Name of the existing public Route53 hosted zone that holds domain_name. Null means the zone is named domain_name itself; set it when the site lives on a subdomain (e.g. \"example.com\" for \"cv.example.com\")."
  type        = string
  default     = null

  validation {
    condition     = var.route53_zone_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.route53_zone_name))
    error_message = "route53_zone_name must be a lowercase DNS name without a trailing dot."
  }
}

variable "www_redirect" {
  description = "Also serve www.<domain_name> (certificate name, DNS records) and redirect it to the apex with a CloudFront Function."
  type        = bool
  default     = true
}

variable "dns_allow_overwrite" {
  description = "Let the stack take over A/AAAA records for domain_name (and www) that already exist in the zone, e.g. from an earlier host. False by default: the first apply then fails with \"already exists\" instead of silently repointing a live name; set it to true once (or `terraform import` the records, README \"Step by step\")."
  type        = bool
  default     = false
}

variable "price_class" {
  description = "CloudFront price class: which edge locations serve the site. PriceClass_100 (North America, Europe, Israel) is the cheapest."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "tags" {
  description = "Extra tags for every resource (merged over Project, Environment and ManagedBy)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# API origin (the Zappa-deployed Lambda function URL)
# ---------------------------------------------------------------------------

variable "api_origin_domain" {
  description = "Host name of the Lambda function URL Zappa created (e.g. \"abcdefg.lambda-url.eu-west-1.on.aws\"; no scheme, no path). Null until the first `zappa deploy`: CloudFront then serves the static site alone, without the /api/* behaviour. deploy.yml reads it from the function."
  type        = string
  default     = null

  validation {
    condition     = var.api_origin_domain == null || can(regex("^[a-z0-9]+\\.lambda-url\\.[a-z0-9-]+\\.on\\.aws$", var.api_origin_domain))
    error_message = "api_origin_domain must be a Lambda function URL host such as \"abcdefg.lambda-url.eu-west-1.on.aws\" (no https://, no trailing slash)."
  }
}

variable "blog_cache_ttl" {
  description = "Longest time in seconds CloudFront keeps a blog page, feed or the sitemap: set it to the app's BLOG_CACHE_TTL (the app's s-maxage never asks for more)."
  type        = number
  default     = 300

  validation {
    condition     = var.blog_cache_ttl >= 30 && var.blog_cache_ttl <= 86400
    error_message = "blog_cache_ttl must be 30 to 86400 seconds, like BLOG_CACHE_TTL."
  }
}

variable "allowed_origins" {
  description = "The app's ALLOWED_ORIGINS: other sites' origins (\"https://host[:port]\") whose browsers may call the API. deploy.yml gives them to the function; when the list is not empty the Origin header joins the /api/* cache key, because CloudFront ignores `Vary: Origin` and would otherwise serve one origin's CORS answer to another."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for origin in var.allowed_origins : can(regex("^https?://[a-z0-9.-]+(:[0-9]{1,5})?$", origin))])
    error_message = "allowed_origins must hold origins such as \"https://jane.example\" (scheme and lowercase host, an optional port, no path or trailing slash)."
  }
}

variable "turnstile_site_key" {
  description = "Cloudflare Turnstile's public site key: the app's TURNSTILE_SITE_KEY (deploy.yml gives the GitHub variable TURNSTILE_SITE_KEY to the build, the function and this stack). When set, the site's Content-Security-Policy also allows https://challenges.cloudflare.com in script-src and frame-src, for the contact form's widget; empty keeps the strict policy. The secret key never comes here: it is set on the function."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{0,100}$", var.turnstile_site_key))
    error_message = "turnstile_site_key must be empty or a Turnstile site key (letters, digits, \"_\" and \"-\", like 0x4AAAAAAA...)."
  }
}

variable "origin_secret" {
  description = "Shared secret CloudFront sends to the function in the X-Origin-Verify header. The app's ORIGIN_SECRET setting holds the same value and refuses every request without it (pages and API alike), so only CloudFront can call the function URL. At least 32 characters of [A-Za-z0-9_-] (e.g. `openssl rand -hex 32`)."
  type        = string
  sensitive   = true
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{32,256}$", var.origin_secret))
    error_message = "origin_secret must be 32-256 characters of letters, digits, \"_\" and \"-\"."
  }
}

# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------

variable "table_name" {
  description = "Name of the DynamoDB table (the table in the app's STORAGE_URL, dynamodb://<table_name>). Use a different name per environment in one account, e.g. \"vitae-dev\"."
  type        = string
  default     = "vitae"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table_name))
    error_message = "table_name must be 3-255 characters of letters, digits, \"_\", \"-\" and \".\"."
  }
}

variable "counter_shards" {
  description = "How many items the hot page-view counters are spread over; deploy.yml gives it to the function as DYNAMODB_COUNTER_SHARDS. 4 (the app's own default) takes about 4,000 counted views/s; one DynamoDB partition takes about 1,000 writes/s. Only ever raise it: reads sum shards 0..N-1, so lowering it hides what the dropped shards counted."
  type        = number
  default     = 4

  validation {
    condition     = var.counter_shards >= 1 && var.counter_shards <= 100 && floor(var.counter_shards) == var.counter_shards
    error_message = "counter_shards must be a whole number from 1 to 100 (reads sum the shards with one BatchGetItem of at most 100 keys)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the function: at most this many run at once (more requests are throttled, the Throttles alarm tells you), which caps what a flood of requests can cost. Zappa owns the function, so deploy.yml writes it into zappa_settings.json as `lambda_concurrency`. 10 by default (about 200 views a second at 50 ms each); null reserves nothing, which a new account needs until its concurrency quota is raised (a quota of 10 allows no reservation)."
  type        = number
  default     = 10

  validation {
    condition     = var.lambda_reserved_concurrency == null || try(var.lambda_reserved_concurrency >= 1 && var.lambda_reserved_concurrency <= 1000 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency, false)
    error_message = "lambda_reserved_concurrency must be null or a whole number from 1 to 1000."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's logs (and, when access_logging is on, days the CloudFront access logs are kept). Short by default: logs can hold visitor IP addresses."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

# ---------------------------------------------------------------------------
# Optional edge features (off by default: each has a monthly cost)
# ---------------------------------------------------------------------------

variable "access_logging" {
  description = "Write CloudFront standard access logs to a dedicated S3 bucket (expired after log_retention_days). Off by default: the visitor counter is designed to work without storing IP addresses."
  type        = bool
  default     = false
}

variable "waf_enabled" {
  description = "Attach an AWS WAF web ACL to the distribution: a per-IP rate limit on /api/* plus the AWS managed common and known-bad-inputs rule sets. Costs 8 USD a month (web ACL and three rules) plus 0.60 USD per million requests."
  type        = bool
  default     = false
}

variable "waf_rate_limit" {
  description = "Requests to /api/* one IP address may make in any 5-minute window before WAF blocks it (only with waf_enabled)."
  type        = number
  default     = 300

  validation {
    condition     = var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000 && floor(var.waf_rate_limit) == var.waf_rate_limit
    error_message = "waf_rate_limit must be a whole number from 10 to 2,000,000,000."
  }
}

# ---------------------------------------------------------------------------
# Continuous deployment (GitHub Actions through OIDC)
# ---------------------------------------------------------------------------

variable "github_repository" {
  description = "The GitHub repository (\"owner/name\") whose workflows may assume the deploy role (jobs in the github_environment only) and the plan role (its pull requests)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must look like \"owner/name\"."
  }
}

variable "github_environment" {
  description = "Name of the protected GitHub environment the deploy job runs in: the only subject the deploy role trusts (its deployment-branch rule and reviewers guard every deploy)."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,255}$", var.github_environment))
    error_message = "github_environment must be 1-255 characters of letters, digits, \".\", \"_\" and \"-\"."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing IAM OIDC provider for token.actions.githubusercontent.com. An account holds only one per URL: leave null in the first stack (it creates the provider) and pass the first stack's github_oidc_provider_arn output to the others."
  type        = string
  default     = null

  validation {
    condition     = var.github_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.github_oidc_provider_arn))
    error_message = "github_oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "terraform_state_bucket" {
  description = "S3 bucket holding this stack's remote state (see backend.tf). The deploy role may read and write the state object and its lock, the plan role may read it. Null when state is local (no CI)."
  type        = string
  default     = null

  validation {
    condition     = var.terraform_state_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.terraform_state_bucket))
    error_message = "terraform_state_bucket must be a valid S3 bucket name."
  }
}

variable "terraform_state_key" {
  description = "Object key of the state in terraform_state_bucket (the backend's `key`)."
  type        = string
  default     = "vitae/production.tfstate"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+$", var.terraform_state_key)) && !startswith(var.terraform_state_key, "/")
    error_message = "terraform_state_key must be a relative S3 key such as \"vitae/production.tfstate\"."
  }
}

# ---------------------------------------------------------------------------
# Monitoring (monitoring.tf): alarms and the monthly budget, by e-mail
# ---------------------------------------------------------------------------

variable "alert_email" {
  description = "E-mail address that receives the alarms and the budget alerts (through the alerts SNS topic). AWS sends a confirmation message first: nothing arrives until its link is followed."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email)) && length(var.alert_email) <= 254
    error_message = "alert_email must be one e-mail address such as \"jane@example.com\"."
  }
}

variable "monthly_budget_usd" {
  description = "Monthly AWS cost budget of the account, in USD. An e-mail goes out when the actual cost passes 80 % of it and when the month's forecast passes 100 %."
  type        = number
  default     = 5

  validation {
    condition     = var.monthly_budget_usd >= 1 && var.monthly_budget_usd <= 100000
    error_message = "monthly_budget_usd must be from 1 to 100,000 (USD)."
  }
}
