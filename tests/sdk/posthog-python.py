"""Drives PostHog's Python SDK (`posthog` on PyPI) against the clickstream gateway.

Usage: posthog-python.py HOST WRITE_KEY RUN_ID. Sends a capture, a person-property set, a group
identify and an alias, then flushes; the Rust test reads them back from Kafka.
"""

import sys

from posthog import Posthog

host, key, run = sys.argv[1:4]
failures = []
client = Posthog(
    key,
    host=host,
    gzip=True,
    sync_mode=False,
    on_error=lambda error, batch: failures.append(repr(error)),
)
user = f"user-{run}"
client.capture(
    "Order Completed",
    distinct_id=user,
    properties={"order_id": f"o-{run}", "total": 42.5},
    groups={"company": f"acme-{run}"},
)
client.set(distinct_id=user, properties={"email": "py@example.com"})
client.group_identify("company", f"acme-{run}", {"plan": "enterprise"}, distinct_id=user)
client.alias(previous_id=f"anon-{run}", distinct_id=user)
client.flush()
client.shutdown()
if failures:
    sys.exit("PostHog SDK reported errors: " + "; ".join(failures))
print("sent 4 events")
