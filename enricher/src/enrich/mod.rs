//! Everything added under an event's `enrichment` object: the product join, user agent,
//! referrer, campaign, GeoIP and session, plus IP masking of `context.ip`.

mod campaign;
mod geo;
mod referrer;
mod url_parts;
mod useragent;

pub use geo::{mask_ip, GeoIp};

use std::borrow::Cow;
use std::net::IpAddr;

use clickstream_schema::{format_timestamp, ip_text, EventType, JsonRef, StoredEvent};
use serde_json::Value;

use crate::config::IpSettings;
use crate::products::ProductTable;
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
    /// `context.ip` masked, when masking changed it.
    pub masked_ip: Option<String>,
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

    /// Writes the `enrichment` object of `event` to `out` as JSON, written straight from the
    /// borrowed event rather than built as a value tree first. Members in this order: product,
    /// products, userAgent, referrer, campaign, geo, session. Products join the row valid at
    /// `event_ms` (or the current row, as the table is configured).
    pub fn enrich(
        &self,
        event: &StoredEvent<'_>,
        event_ms: i64,
        session: &SessionView,
        out: &mut Vec<u8>,
    ) -> EnrichReport {
        let mut report = EnrichReport::default();
        let context = event.object("context");
        let properties = event.object("properties");
        out.push(b'{');
        self.products_into(event, properties, event_ms, &mut report, out);

        let page = context.and_then(|c| c.get("page"));
        let from_page = |field: &str| {
            page.and_then(|p| p.get(field)).and_then(|url| url.as_str()).or_else(|| {
                // Page calls carry the page in their properties, too.
                let from_properties = || properties.and_then(|p| p.get(field)).and_then(|url| url.as_str());
                (event.kind() == EventType::Page).then(from_properties)?
            })
        };
        let (url, referrer) = (from_page("url"), from_page("referrer"));
        // One parse of the page URL serves the referrer (its host) and the campaign (its query).
        let page_url = url.as_deref().and_then(url_parts::UrlParts::parse);
        let user_agent = context.and_then(|c| c.get("userAgent")).and_then(|agent| agent.as_str()).unwrap_or_default();
        out.extend_from_slice(b",\"userAgent\":");
        out.extend_from_slice(self.user_agents.json(&user_agent).as_bytes());
        out.extend_from_slice(b",\"referrer\":");
        referrer::classify_into(referrer.as_deref(), page_url.as_ref(), out);
        out.extend_from_slice(b",\"campaign\":");
        let context_campaign = context.and_then(|c| c.get("campaign"));
        campaign::extract_into(page_url.as_ref(), context_campaign, out);

        let ip = context.and_then(|c| c.get("ip")).and_then(|ip| ip.as_str()).and_then(|s| s.parse::<IpAddr>().ok());
        if let Some(ip) = ip {
            if let Some(geo) = &self.geo {
                out.extend_from_slice(b",\"geo\":");
                write_value(out, &geo.lookup(ip));
            }
            if self.ip.anonymize {
                report.masked_ip = Some(ip_text(mask_ip(ip, self.ip.ipv4_prefix_bits, self.ip.ipv6_prefix_bits)));
            }
        }
        out.extend_from_slice(b",\"session\":{\"id\":");
        write_str(out, &session.id);
        out.extend_from_slice(b",\"sequence\":");
        out.extend_from_slice(session.sequence.to_string().as_bytes());
        out.extend_from_slice(b",\"start\":");
        match chrono::DateTime::from_timestamp_millis(session.start_ms) {
            Some(start) => write_str(out, &format_timestamp(start)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}}");
        report
    }

    /// `"product"` (and `"products"` for a list): the joined rows, with the line items.
    fn products_into(
        &self,
        event: &StoredEvent<'_>,
        properties: Option<JsonRef<'_>>,
        event_ms: i64,
        report: &mut EnrichReport,
        out: &mut Vec<u8>,
    ) {
        let purchase = event.str("event").is_some_and(|name| PURCHASE_EVENTS.contains(&name.as_ref()));
        out.extend_from_slice(b"\"product\":");
        match properties.and_then(|p| p.get("product_id")).and_then(|id| id.id_text()) {
            Some(id) => self.line_into(id, event_ms, properties, purchase, report, out),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(items) = properties.and_then(|p| p.get("products")).and_then(|products| products.items()) {
            out.extend_from_slice(b",\"products\":[");
            for (index, item) in items.enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                match item.get("product_id").and_then(|id| id.id_text()) {
                    Some(id) => self.line_into(id, event_ms, Some(item), purchase, report, out),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b']');
        }
    }

    /// Joins one product id, writes its row, and notes its line item.
    fn line_into(
        &self,
        id: Cow<'_, str>,
        event_ms: i64,
        fields: Option<JsonRef<'_>>,
        purchase: bool,
        report: &mut EnrichReport,
        out: &mut Vec<u8>,
    ) {
        let joined = self.products.join(&id, event_ms);
        match &joined {
            Some(joined) => out.extend_from_slice(&joined.json),
            None => {
                report.join_misses += 1;
                out.extend_from_slice(b"null");
            }
        }
        let number = |field: &str| fields.and_then(|f| f.get(field)).and_then(|n| n.as_f64());
        let quantity = number("quantity").unwrap_or(1.0);
        let price = number("price").or_else(|| joined.as_ref().and_then(|j| row_price(&j.row)));
        report.line_items.push(line_item(id.into_owned(), quantity, price, purchase));
    }
}

pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    clickstream_schema::write_json_str(out, text);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    let _ = serde_json::to_writer(&mut *out, value);
}

fn line_item(product_id: String, quantity: f64, price: Option<f64>, purchase: bool) -> LineItem {
    let revenue = if purchase { price.unwrap_or(0.0) * quantity } else { 0.0 };
    LineItem { product_id, quantity, revenue }
}

fn row_price(row: &serde_json::Map<String, Value>) -> Option<f64> {
    let price = row.get("price")?;
    price.as_f64().or_else(|| price.as_str()?.parse().ok())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
