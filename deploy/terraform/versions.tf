terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # aws_chatbot_slack_channel_configuration arrived in 5.7x; data.aws_region.name is
      # deprecated (not removed) in 6.x.
      version = ">= 5.80, < 7.0"
    }
  }
}
