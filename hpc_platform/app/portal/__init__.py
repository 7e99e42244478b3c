"""The self-service portal: requests, approvals and a deployment queue over the Automation API."""
