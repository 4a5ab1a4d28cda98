# Named after the daemon's settings: queue_url -> METERWATCH_QUEUE_URL ([source] queue_url),
# topic_arn -> METERWATCH_TOPIC_ARN ([sinks.alerts] topic_arn), chatbot_topic_arn ->
# METERWATCH_CHATBOT_TOPIC_ARN ([sinks.chatbot], format chatbot), state_table_name ->
# METERWATCH_STATE_TABLE ([state] table, and type = "dynamodb"). Same outputs as the
# CloudFormation stack.

output "queue_url" {
  description = "[source] queue_url / METERWATCH_QUEUE_URL"
  value       = aws_sqs_queue.events.url
}

output "queue_arn" {
  description = "The events queue's ARN"
  value       = aws_sqs_queue.events.arn
}

output "dead_letter_queue_url" {
  description = "Dead-letter queue (inspect and redrive from here)"
  value       = aws_sqs_queue.dead_letter.url
}

output "topic_arn" {
  description = "[sinks.alerts] topic_arn / METERWATCH_TOPIC_ARN"
  value       = aws_sns_topic.alerts.arn
}

output "chatbot_topic_arn" {
  description = "[sinks.chatbot] topic_arn (format chatbot) / METERWATCH_CHATBOT_TOPIC_ARN: the topic AWS Chatbot relays to Slack; null without Slack"
  value       = local.has_slack ? aws_sns_topic.chatbot[0].arn : null
}

output "alarm_topic_arn" {
  description = "Topic of the CloudWatch alarms"
  value       = aws_sns_topic.alarms.arn
}

output "rule_arn" {
  description = "The EventBridge rule"
  value       = aws_cloudwatch_event_rule.metering.arn
}

output "state_table_name" {
  description = "[state] table / METERWATCH_STATE_TABLE (which selects type = \"dynamodb\"); null when disabled"
  value       = var.enable_state_table ? aws_dynamodb_table.state[0].name : null
}

output "task_role_arn" {
  description = "ECS taskRoleArn"
  value       = var.create_ecs_roles ? aws_iam_role.task[0].arn : null
}

output "execution_role_arn" {
  description = "ECS executionRoleArn"
  value       = var.create_ecs_roles ? aws_iam_role.execution[0].arn : null
}

output "log_group_name" {
  description = "ECS awslogs-group"
  value       = var.create_ecs_roles ? aws_cloudwatch_log_group.ecs[0].name : null
}

output "repository_uri" {
  description = "ECR repository for the image"
  value       = var.create_ecr_repository ? aws_ecr_repository.this[0].repository_url : null
}

output "service_account_role_arn" {
  description = "Kubernetes service account annotation eks.amazonaws.com/role-arn (or Pod Identity association)"
  value       = var.create_kubernetes_role ? aws_iam_role.kubernetes[0].arn : null
}
