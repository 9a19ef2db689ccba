"""Route 53 health-check settings, kept free of CDK imports so the local platform can read the
same values without starting jsii (``stacks/dns_failover.py`` synthesizes them)."""

REQUEST_INTERVAL_SECONDS = 10  # the fast interval: about 30 s to detect a failure, not 90 s
FAILURE_THRESHOLD = 3
HEALTH_SEARCH_STRING = '"status":"ok"'
