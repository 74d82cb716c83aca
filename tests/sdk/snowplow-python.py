"""Drives Snowplow's Python tracker (`snowplow-tracker` on PyPI) against the clickstream gateway.

Usage: snowplow-python.py HOST PORT APP_ID RUN_ID. Through a POST emitter: a page view, a
structured event, a self-describing event, and a transaction with one item (sent as two
events); through a GET emitter: a page view, a structured event and a page ping, the last with
a true timestamp. Then flushes both; the Rust test reads the 8 events back from Kafka.
"""

import sys

from snowplow_tracker import Emitter, SelfDescribingJson, Subject, Tracker
from snowplow_tracker.events import PagePing, PageView, SelfDescribing, StructuredEvent

host, port, app_id, run = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
failures = []


def failed(sent, unsent):
    failures.append(f"{len(unsent)} events not accepted")


def emitter(method):
    return Emitter(host, protocol="http", port=port, method=method, batch_size=10, on_failure=failed)


subject = Subject().set_user_id(f"user-{run}").set_domain_user_id(f"duid-{run}").set_lang("en-GB")
subject.set_screen_resolution(1440, 900).set_timezone("Europe/London")
post = Tracker("py-post", emitter("post"), subject=subject, app_id=app_id)
get = Tracker("py-get", emitter("get"), subject=subject, app_id=app_id)
page_context = SelfDescribingJson("iglu:com.acme/page_type/jsonschema/1-0-0", {"type": "product", "run": run})

post.track(PageView(f"https://shop.example/{run}/post", page_title="Post page", context=[page_context]))
post.track(StructuredEvent("checkout", "apply-coupon", label="SPRING", property_="cart", value=12.5))
post.track(
    SelfDescribing(SelfDescribingJson("iglu:com.acme/wishlist_add/jsonschema/1-0-0", {"sku": "sku-1", "run": run}))
)
post.track_ecommerce_transaction(
    f"order-{run}",
    42.5,
    affiliation="web",
    tax_value=4.25,
    shipping=3.0,
    currency="GBP",
    items=[{"sku": "sku-1", "price": 19.75, "quantity": 2, "name": "Mug", "category": "kitchen"}],
)
get.track(PageView(f"https://shop.example/{run}/get", page_title="Get page"))
get.track(StructuredEvent("mail", "open", label=run))
get.track(
    PagePing(f"https://shop.example/{run}/get", min_x=0, max_x=10, min_y=20, max_y=900, true_timestamp=1700000000123)
)
post.flush()
get.flush()
if failures:
    sys.exit("Snowplow tracker reported failures: " + "; ".join(failures))
print("sent 8 events")
