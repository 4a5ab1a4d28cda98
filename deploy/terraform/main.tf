# meterwatch AWS wiring: EventBridge rule for AWS Marketplace metering calls (CloudTrail) -> SQS
# queue with a dead-letter queue -> the daemon -> SNS alert topic (email, Slack via AWS
# Chatbot); the daemon's IAM roles, an optional DynamoDB state table, and alarms.
# The same resources as deploy/cloudformation/meterwatch.yaml; comments there apply here too.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  use_kms         = var.kms_key_arn != ""
  create_bus      = var.event_bus_name != "default" && var.create_event_bus
  bus_name        = local.create_bus ? aws_cloudwatch_event_bus.this[0].name : var.event_bus_name
  has_slack       = var.slack_workspace_id != "" && var.slack_channel_id != ""
  has_oidc        = var.eks_oidc_issuer != ""
  has_email       = var.alert_email != ""
  ecs_source_arn  = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"
  alarm_arn_base  = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm"
  repository_arn  = "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${var.name_prefix}"
  dead_letter_key = "${var.name_prefix}-dead-letters"
  queue_age_key   = "${var.name_prefix}-queue-age"
  no_consumer_key = "${var.name_prefix}-no-consumer"

  # Roles the daemon runs as; static keys so for_each is known at plan time.
  daemon_roles = merge(
    var.create_ecs_roles ? { ecs = aws_iam_role.task[0].name } : {},
    var.create_kubernetes_role ? { kubernetes = aws_iam_role.kubernetes[0].name } : {},
  )
  daemon_policies = merge(
    { daemon = aws_iam_policy.daemon.arn },
    local.use_kms ? { kms = aws_iam_policy.daemon_kms[0].arn } : {},
    var.enable_state_table ? { state = aws_iam_policy.daemon_state[0].arn } : {},
  )
  daemon_attachments = {
    for pair in setproduct(keys(local.daemon_roles), keys(local.daemon_policies)) :
    "${pair[0]}-${pair[1]}" => { role = local.daemon_roles[pair[0]], policy = local.daemon_policies[pair[1]] }
  }
}

# ------------------------------------------------------------------ events -> queue

resource "aws_cloudwatch_event_bus" "this" {
  count = local.create_bus ? 1 : 0
  name  = var.event_bus_name
  tags  = var.tags
}

# Only the listed accounts may forward events; the rule still filters them.
data "aws_iam_policy_document" "event_bus" {
  count = local.create_bus && length(var.event_bus_source_account_ids) > 0 ? 1 : 0
  statement {
    sid       = "SourceAccounts"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.this[0].arn]
    principals {
      type        = "AWS"
      identifiers = var.event_bus_source_account_ids
    }
  }
}

resource "aws_cloudwatch_event_bus_policy" "this" {
  count          = length(data.aws_iam_policy_document.event_bus)
  event_bus_name = aws_cloudwatch_event_bus.this[0].name
  policy         = data.aws_iam_policy_document.event_bus[0].json
}

# domain.md 1.1: every metering call, successful or not; the daemon's rules decide.
resource "aws_cloudwatch_event_rule" "metering" {
  name           = "${var.name_prefix}-metering-calls"
  description    = "AWS Marketplace metering API calls recorded by CloudTrail, to the meterwatch queue"
  event_bus_name = local.bus_name
  state          = "ENABLED"
  event_pattern = jsonencode({
    source        = ["aws.metering-marketplace"]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["metering-marketplace.amazonaws.com"]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  rule           = aws_cloudwatch_event_rule.metering.name
  event_bus_name = local.bus_name
  target_id      = "meterwatch-queue"
  arn            = aws_sqs_queue.events.arn
  # Undeliverable events (queue or key policy wrong) land in the DLQ, under the same alarm.
  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }
}

resource "aws_sqs_queue" "events" {
  name = "${var.name_prefix}-events"
  # SSE always: SQS-managed keys unless a customer key is given.
  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = local.use_kms ? var.kms_key_arn : null
  kms_data_key_reuse_period_seconds = local.use_kms ? 300 : null
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = 20
  # Poison messages (never deleted by the daemon) move to the DLQ after max_receive_count tries.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue" "dead_letter" {
  name                              = "${var.name_prefix}-events-dlq"
  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = local.use_kms ? var.kms_key_arn : null
  kms_data_key_reuse_period_seconds = local.use_kms ? 300 : null
  # Maximum retention: someone has to look at these.
  message_retention_seconds = 1209600
  tags                      = var.tags
}

# Only the rule may send (its target and its dead-letter config); no plain HTTP. The daemon
# needs no statement here: same-account IAM policies suffice.
data "aws_iam_policy_document" "queue" {
  for_each = {
    events      = aws_sqs_queue.events.arn
    dead_letter = aws_sqs_queue.dead_letter.arn
  }
  statement {
    sid       = "AllowMeteringRuleOnly"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.metering.arn]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]
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

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.queue["events"].json
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.queue["dead_letter"].json
}

# ------------------------------------------------------------------ alerts

resource "aws_sns_topic" "alerts" {
  name         = "${var.name_prefix}-alerts"
  display_name = "meterwatch"
  # The customer key when given, otherwise the AWS-managed key (only the daemon, an IAM
  # principal, publishes here). AWS Chatbot reads the chatbot topic below, not this one.
  kms_master_key_id = local.use_kms ? var.kms_key_arn : "alias/aws/sns"
  tags              = var.tags
}

# With Slack: the topic AWS Chatbot relays to the channel. The daemon publishes its alerts here
# as Chatbot custom notifications (a `chatbot`-format sink, METERWATCH_CHATBOT_TOPIC_ARN), the
# only shape Chatbot shows; the alert topic keeps the alert document and readable email text,
# which Chatbot would drop silently.
resource "aws_sns_topic" "chatbot" {
  # checkov:skip=CKV_AWS_26: encrypted when kms_key_arn is given; AWS Chatbot does not deliver from topics encrypted with the AWS-managed aws/sns key.
  count             = local.has_slack ? 1 : 0
  name              = "${var.name_prefix}-chatbot"
  display_name      = "meterwatch Slack"
  kms_master_key_id = local.use_kms ? var.kms_key_arn : null
  tags              = var.tags
}

# Alarms get their own topic: CloudWatch cannot publish to a topic encrypted with the
# AWS-managed aws/sns key.
resource "aws_sns_topic" "alarms" {
  # checkov:skip=CKV_AWS_26: encrypted when kms_key_arn is given; without it no key CloudWatch may use exists, and alarm messages carry only metric names and states, no event data.
  name              = "${var.name_prefix}-alarms"
  display_name      = "meterwatch alarms"
  kms_master_key_id = local.use_kms ? var.kms_key_arn : null
  tags              = var.tags
}

data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
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

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

data "aws_iam_policy_document" "chatbot_topic" {
  count = local.has_slack ? 1 : 0
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.chatbot[0].arn]
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

resource "aws_sns_topic_policy" "chatbot" {
  count  = local.has_slack ? 1 : 0
  arn    = aws_sns_topic.chatbot[0].arn
  policy = data.aws_iam_policy_document.chatbot_topic[0].json
}

# A topic policy replaces the default one, so CloudWatch is admitted explicitly, for this
# account's alarms only.
data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "AllowAccountAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["${local.alarm_arn_base}:*"]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
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

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "alert_email" {
  count     = local.has_email ? 1 : 0
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = local.has_email ? 1 : 0
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

# AWS Chatbot relays the daemon's custom notifications (the chatbot topic) and CloudWatch alarms
# to Slack.
data "aws_iam_policy_document" "chatbot_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["chatbot.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "chatbot" {
  count              = local.has_slack ? 1 : 0
  name               = "${var.name_prefix}-chatbot"
  assume_role_policy = data.aws_iam_policy_document.chatbot_trust.json
  tags               = var.tags
}

# Lets Chatbot draw the alarm's metric graph in the channel; nothing else.
data "aws_iam_policy_document" "chatbot" {
  statement {
    actions = ["cloudwatch:DescribeAlarms"]
    resources = [
      "${local.alarm_arn_base}:${local.dead_letter_key}",
      "${local.alarm_arn_base}:${local.queue_age_key}",
      "${local.alarm_arn_base}:${local.no_consumer_key}",
    ]
  }
  statement {
    # GetMetricWidgetImage supports no resource-level permissions.
    actions   = ["cloudwatch:GetMetricWidgetImage"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "chatbot" {
  count  = local.has_slack ? 1 : 0
  name   = "alarm-graphs"
  role   = aws_iam_role.chatbot[0].id
  policy = data.aws_iam_policy_document.chatbot.json
}

resource "aws_chatbot_slack_channel_configuration" "this" {
  count              = local.has_slack ? 1 : 0
  configuration_name = "${var.name_prefix}-slack"
  iam_role_arn       = aws_iam_role.chatbot[0].arn
  slack_team_id      = var.slack_workspace_id
  slack_channel_id   = var.slack_channel_id
  sns_topic_arns     = [aws_sns_topic.chatbot[0].arn, aws_sns_topic.alarms.arn]
  logging_level      = "ERROR"
  # Channel members can run nothing beyond reading CloudWatch.
  guardrail_policy_arns       = ["arn:${local.partition}:iam::aws:policy/CloudWatchReadOnlyAccess"]
  user_authorization_required = false
  tags                        = var.tags
}

# ------------------------------------------------------------------ state

resource "aws_dynamodb_table" "state" {
  # checkov:skip=CKV_AWS_119: encrypted at rest always (AWS-owned key), with the customer key when kms_key_arn is given.
  count        = var.enable_state_table ? 1 : 0
  name         = "${var.name_prefix}-state"
  billing_mode = "PAY_PER_REQUEST"
  # The daemon's contract: partition key pk (S), no sort key, TTL on expires_at (epoch s).
  hash_key = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  dynamic "server_side_encryption" {
    for_each = local.use_kms ? [var.kms_key_arn] : []
    content {
      enabled     = true
      kms_key_arn = server_side_encryption.value
    }
  }
  tags = var.tags
}

# ------------------------------------------------------------------ the daemon's permissions
# Exactly what meterwatch calls, one policy per capability, attached to whichever roles exist.

data "aws_iam_policy_document" "daemon" {
  statement {
    sid = "ConsumeQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.events.arn]
  }
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = concat([aws_sns_topic.alerts.arn], aws_sns_topic.chatbot[*].arn)
  }
}

resource "aws_iam_policy" "daemon" {
  name        = "${var.name_prefix}-daemon"
  description = "meterwatch daemon - consume the metering queue, publish alerts"
  policy      = data.aws_iam_policy_document.daemon.json
  tags        = var.tags
}

# Decrypt received messages; GenerateDataKey to publish to the encrypted topic.
data "aws_iam_policy_document" "daemon_kms" {
  count = local.use_kms ? 1 : 0
  statement {
    sid       = "UseCustomerKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_policy" "daemon_kms" {
  count       = local.use_kms ? 1 : 0
  name        = "${var.name_prefix}-daemon-kms"
  description = "meterwatch daemon - the customer key of the queue and topic"
  policy      = data.aws_iam_policy_document.daemon_kms[0].json
  tags        = var.tags
}

data "aws_iam_policy_document" "daemon_state" {
  count = var.enable_state_table ? 1 : 0
  statement {
    sid = "StateTable"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:DeleteItem",
    ]
    resources = [aws_dynamodb_table.state[0].arn]
  }
}

resource "aws_iam_policy" "daemon_state" {
  count       = var.enable_state_table ? 1 : 0
  name        = "${var.name_prefix}-daemon-state"
  description = "meterwatch daemon - the dedup, throttle and absence state table"
  policy      = data.aws_iam_policy_document.daemon_state[0].json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "daemon" {
  for_each   = local.daemon_attachments
  role       = each.value.role
  policy_arn = each.value.policy
}

# ECS tasks of this account only (confused-deputy conditions).
data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.ecs_source_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ECS: the task role the daemon runs as.
resource "aws_iam_role" "task" {
  count              = var.create_ecs_roles ? 1 : 0
  name               = "${var.name_prefix}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = var.tags
}

# ECS: the role the agent uses to pull the image and ship logs (not the daemon's).
resource "aws_iam_role" "execution" {
  count              = var.create_ecs_roles ? 1 : 0
  name               = "${var.name_prefix}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  count = var.create_ecs_roles ? 1 : 0
  statement {
    sid     = "EcrLogin"
    actions = ["ecr:GetAuthorizationToken"]
    # GetAuthorizationToken supports no resource-level permissions.
    resources = ["*"]
  }
  statement {
    sid = "PullImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [local.repository_arn]
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ecs[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  count  = var.create_ecs_roles ? 1 : 0
  name   = "pull-image-and-log"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution[0].json
}

resource "aws_cloudwatch_log_group" "ecs" {
  # checkov:skip=CKV_AWS_158: encrypted by CloudWatch Logs always; with the customer key when kms_key_arn is given.
  # checkov:skip=CKV_AWS_338: the daemon's logs are operational (alerts go to SNS); a year of retention is the operator's choice, log_retention_days.
  count             = var.create_ecs_roles ? 1 : 0
  name              = "/ecs/${var.name_prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.use_kms ? var.kms_key_arn : null
  tags              = var.tags
}

resource "aws_ecr_repository" "this" {
  # checkov:skip=CKV_AWS_136: encrypted always (AES256); with the customer key when kms_key_arn is given.
  count = var.create_ecr_repository ? 1 : 0
  name  = var.name_prefix
  # Tags name releases; an immutable tag is the image that was reviewed.
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = local.use_kms ? "KMS" : "AES256"
    kms_key         = local.use_kms ? var.kms_key_arn : null
  }
  tags = var.tags
}

# Kubernetes: the role the daemon's service account assumes, through EKS Pod Identity (always)
# and IRSA (when the cluster's OIDC issuer is given), pinned to one namespace and account.
data "aws_iam_policy_document" "kubernetes_trust" {
  statement {
    sid     = "EksPodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-namespace"
      values   = [var.kubernetes_namespace]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-service-account"
      values   = [var.kubernetes_service_account]
    }
  }
  dynamic "statement" {
    for_each = local.has_oidc ? [var.eks_oidc_issuer] : []
    content {
      sid     = "EksIrsa"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = ["arn:${local.partition}:iam::${local.account_id}:oidc-provider/${statement.value}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value}:sub"
        values   = ["system:serviceaccount:${var.kubernetes_namespace}:${var.kubernetes_service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "kubernetes" {
  count              = var.create_kubernetes_role ? 1 : 0
  name               = "${var.name_prefix}-kubernetes"
  assume_role_policy = data.aws_iam_policy_document.kubernetes_trust.json
  tags               = var.tags
}

# ------------------------------------------------------------------ alarms

# Anything in the DLQ is an event nobody alerted on: poison messages and failed deliveries.
resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = local.dead_letter_key
  alarm_description   = "meterwatch dead-letter queue is not empty: events were not processed (poison messages, or EventBridge could not deliver). Inspect and redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

# An old message means no daemon is consuming: metering failures would go unseen.
resource "aws_cloudwatch_metric_alarm" "queue_age" {
  alarm_name          = local.queue_age_key
  alarm_description   = "meterwatch queue has events older than the threshold: the daemon is down, stuck, or lacks permissions."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.events.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.oldest_message_age_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

# No receives at all means no daemon: a live one long-polls all the time, so every 5 minutes
# it makes empty receives or receives messages. Unlike the queue-age alarm, this needs no
# message to be waiting: it fires while metering is quiet too.
resource "aws_cloudwatch_metric_alarm" "no_consumer" {
  alarm_name          = local.no_consumer_key
  alarm_description   = "meterwatch queue has had no receives for 15 minutes: no daemon is consuming (down, crash-looping, or lacking sqs:ReceiveMessage). Its own alerts, absences included, are off."
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 0
  comparison_operator = "LessThanOrEqualToThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags

  metric_query {
    id          = "empty"
    return_data = false
    metric {
      namespace   = "AWS/SQS"
      metric_name = "NumberOfEmptyReceives"
      dimensions  = { QueueName = aws_sqs_queue.events.name }
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id          = "received"
    return_data = false
    metric {
      namespace   = "AWS/SQS"
      metric_name = "NumberOfMessagesReceived"
      dimensions  = { QueueName = aws_sqs_queue.events.name }
      period      = 300
      stat        = "Sum"
    }
  }
  # SQS stops sending the metrics of a queue nobody uses: missing counts as none.
  metric_query {
    id          = "receives"
    label       = "Receives (empty or with messages)"
    expression  = "FILL(empty, 0) + FILL(received, 0)"
    return_data = true
  }
}
