"""The self-service portal: environments, requests with the offline assessment, approvals bound to
the reviewed plan, and a deployment queue in the database that workers drain through the Pulumi
Automation API (one running job per stack).

`settings` (where things live), `db`/`models`/`migrations` (the schema on SQLite and PostgreSQL),
`auth` and `audit`, `queue` (claim, heartbeat, orphans, backoff), `flow` (the request state machine,
called by the JSON API and by the pages alike), `worker` (the loop that runs jobs) and `api`.
"""
