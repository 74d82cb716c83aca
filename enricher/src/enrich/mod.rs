//! Everything added under an event's `enrichment` object: the product join, user agent,
//! referrer, campaign, GeoIP and session, plus IP masking of `context.ip`.

mod campaign;
mod geo;
mod referrer;
mod useragent;

pub use geo::{mask_ip, GeoIp};

use clickstream_schema::{format_timestamp, Event, EventType};
use serde_json::{json, Map, Value};

use crate::config::IpSettings;
use crate::products::{id_text, ProductTable};
use crate::session::SessionView;

/// One product an event is about, for the windowed aggregates.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    pub product_id: String,
    pub quantity: f64,
    /// Price × quantity for purchases; zero for other events.
    pub revenue: f64,
}

/// What enriching one event found besides the fields it added.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EnrichReport {
    pub line_items: Vec<LineItem>,
    /// Products the event names that the table does not have.
    pub join_misses: usize,
}

/// The enrichments, with their reference data.
#[derive(Debug)]
pub struct Enrichers {
    pub products: ProductTable,
    geo: Option<GeoIp>,
    ip: IpSettings,
    user_agents: useragent::UserAgents,
}

/// Events whose line items carry revenue.
const PURCHASE_EVENTS: [&str; 2] = ["Order Completed", "Product Purchased"];

impl Enrichers {
    pub fn new(products: ProductTable, ip: IpSettings) -> Result<Self, String> {
        let geo = ip.geoip_database.as_deref().map(GeoIp::open).transpose()?;
        Ok(Self { products, geo, ip, user_agents: useragent::UserAgents::default() })
    }

    /// Adds `enrichment` to `event` and masks its IP.
    pub fn enrich(&self, event: &mut Event, session: &SessionView) -> EnrichReport {
        let mut report = EnrichReport::default();
        let mut enrichment = self.describe(event, &mut report);
        self.enrich_ip(event, &mut enrichment);
        enrichment.insert(
            "session".into(),
            json!({
                "id": session.id,
                "sequence": session.sequence,
                "start": chrono::DateTime::from_timestamp_millis(session.start_ms).map(format_timestamp),
            }),
        );
        event.extra.insert("enrichment".into(), Value::Object(enrichment));
        report
    }

    /// The enrichments read from the event as it is (everything but the IP and the session).
    fn describe(&self, event: &Event, report: &mut EnrichReport) -> Map<String, Value> {
        let mut enrichment = Map::new();
        let empty = Map::new();
        let properties = event.properties.as_ref().unwrap_or(&empty);
        let purchase = event.event.as_deref().is_some_and(|name| PURCHASE_EVENTS.contains(&name));

        if let Some(id) = properties.get("product_id").and_then(id_text) {
            let row = self.join(&id, report);
            let quantity = properties.get("quantity").and_then(Value::as_f64).unwrap_or(1.0);
            let price = properties.get("price").and_then(Value::as_f64).or_else(|| row_price(&row));
            report.line_items.push(line_item(id, quantity, price, purchase));
            enrichment.insert("product".into(), row);
        } else {
            enrichment.insert("product".into(), Value::Null);
        }
        if let Some(Value::Array(items)) = properties.get("products") {
            let mut joined = Vec::with_capacity(items.len());
            for item in items {
                let Some(id) = item.get("product_id").and_then(id_text) else {
                    joined.push(Value::Null);
                    continue;
                };
                let row = self.join(&id, report);
                let quantity = item.get("quantity").and_then(Value::as_f64).unwrap_or(1.0);
                let price = item.get("price").and_then(Value::as_f64).or_else(|| row_price(&row));
                report.line_items.push(line_item(id, quantity, price, purchase));
                joined.push(row);
            }
            enrichment.insert("products".into(), Value::Array(joined));
        }

        let context = event.context.as_ref().unwrap_or(&empty);
        let page = context.get("page").and_then(Value::as_object);
        let from_page = |field: &str| {
            page.and_then(|p| p.get(field)).and_then(Value::as_str).or_else(|| {
                // Page calls carry the page in their properties, too.
                (event.kind == EventType::Page).then(|| properties.get(field).and_then(Value::as_str))?
            })
        };
        let (url, referrer) = (from_page("url"), from_page("referrer"));
        let user_agent = context.get("userAgent").and_then(Value::as_str).unwrap_or_default();
        enrichment.insert("userAgent".into(), self.user_agents.describe(user_agent));
        enrichment.insert("referrer".into(), referrer::classify(referrer, url));
        let context_campaign = context.get("campaign").and_then(Value::as_object);
        enrichment.insert("campaign".into(), campaign::extract(url, context_campaign));
        enrichment
    }

    fn join(&self, id: &str, report: &mut EnrichReport) -> Value {
        match self.products.get(id) {
            Some(row) => {
                let mut row = (*row).clone();
                row.entry("id").or_insert_with(|| Value::String(id.to_owned()));
                Value::Object(row)
            }
            None => {
                report.join_misses += 1;
                Value::Null
            }
        }
    }

    fn enrich_ip(&self, event: &mut Event, enrichment: &mut Map<String, Value>) {
        let context = event.context_mut();
        let Some(ip) = context.get("ip").and_then(Value::as_str).and_then(|s| s.parse().ok()) else { return };
        if let Some(geo) = &self.geo {
            enrichment.insert("geo".into(), geo.lookup(ip));
        }
        if self.ip.anonymize {
            let masked = mask_ip(ip, self.ip.ipv4_prefix_bits, self.ip.ipv6_prefix_bits);
            context.insert("ip".into(), Value::String(masked.to_string()));
        }
    }
}

fn line_item(product_id: String, quantity: f64, price: Option<f64>, purchase: bool) -> LineItem {
    let revenue = if purchase { price.unwrap_or(0.0) * quantity } else { 0.0 };
    LineItem { product_id, quantity, revenue }
}

fn row_price(row: &Value) -> Option<f64> {
    let price = row.get("price")?;
    price.as_f64().or_else(|| price.as_str()?.parse().ok())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
