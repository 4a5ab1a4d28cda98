# Inputs, one for one with the CloudFormation template's parameters (deploy/cloudformation).

variable "name_prefix" {
  description = "Prefix of every resource name (queue, topics, table, roles, log group)."
  type        = string
  default     = "meterwatch"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.name_prefix))
    error_message = "name_prefix: lowercase letters, digits and dashes, at most 40."
  }
}

variable "event_bus_name" {
  description = "Bus the rule listens on: \"default\" (this account's CloudTrail events) or a custom bus receiving events forwarded from other accounts."
  type        = string
  default     = "default"
}

variable "create_event_bus" {
  description = "Create the custom bus named by event_bus_name (ignored for \"default\")."
  type        = bool
  default     = false
}

variable "event_bus_source_account_ids" {
  description = "Accounts allowed to put events on the created custom bus. Empty: no bus policy."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Optional customer-managed KMS key for the queues, topics, table, logs and repository. Empty: SQS-managed SSE and AWS-managed keys. Its key policy must admit events.amazonaws.com and cloudwatch.amazonaws.com (and logs.<region>.amazonaws.com with create_ecs_roles)."
  type        = string
  default     = ""
  validation {
    condition     = var.kms_key_arn == "" || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn: a KMS key ARN, or empty."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the dead-letter queue."
  type        = number
  default     = 5
  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count: 1 to 1000."
  }
}

variable "visibility_timeout_seconds" {
  description = "Queue default visibility timeout; keep equal to [source] visibility_timeout_secs."
  type        = number
  default     = 60
}

variable "message_retention_seconds" {
  description = "How long the queue keeps events the daemon has not consumed."
  type        = number
  default     = 345600
}

variable "oldest_message_age_alarm_seconds" {
  description = "Alarm when the oldest queued event is older than this (the daemon is down or stuck)."
  type        = number
  default     = 900
}

variable "alert_email" {
  description = "Optional address subscribed to the alert and alarm topics (confirm the email)."
  type        = string
  default     = ""
}

variable "slack_workspace_id" {
  description = "AWS Chatbot Slack workspace (team) id, authorized once in the AWS Chatbot console. With slack_channel_id, alerts and alarms go to that channel."
  type        = string
  default     = ""
}

variable "slack_channel_id" {
  description = "Slack channel id. Invite @aws to private channels."
  type        = string
  default     = ""
}

variable "enable_state_table" {
  description = "Create the DynamoDB table for [state] type = \"dynamodb\" (shared by replicas)."
  type        = bool
  default     = false
}

variable "create_ecs_roles" {
  description = "Create the ECS task role, task execution role and log group."
  type        = bool
  default     = true
}

variable "create_ecr_repository" {
  description = "Create an ECR repository named name_prefix for the image."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the ECS log group."
  type        = number
  default     = 30
}

variable "create_kubernetes_role" {
  description = "Create the role for the Kubernetes service account (EKS Pod Identity, and IRSA with eks_oidc_issuer)."
  type        = bool
  default     = true
}

variable "eks_oidc_issuer" {
  description = "For IRSA: the cluster's OIDC issuer without https:// (its IAM OIDC provider must exist). Empty: EKS Pod Identity trust only."
  type        = string
  default     = ""
  validation {
    condition     = !startswith(var.eks_oidc_issuer, "https://")
    error_message = "eks_oidc_issuer: leave out the https:// scheme."
  }
}

variable "kubernetes_namespace" {
  description = "Namespace of the daemon's service account."
  type        = string
  default     = "meterwatch"
}

variable "kubernetes_service_account" {
  description = "Name of the daemon's service account."
  type        = string
  default     = "meterwatch"
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
