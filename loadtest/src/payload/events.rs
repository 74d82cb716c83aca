//! Visitor actions written as the Segment events analytics.js would send: page, identify,
//! and the e-commerce spec's track events, with `context.page`, `context.campaign`, the user
//! agent, locale and time zone.

use serde::Serialize;

use super::catalog::{Catalog, Product};
use super::visitors::{slug, Action, Campaign, Session, Visitor};

/// The shop the simulated visitors browse.
pub const SITE: &str = "https://shop.example";
const LIBRARY: Library = Library { name: "analytics.js", version: "npm:next-1.76.0" };

/// Segment's event type of an action, and the short path analytics.js posts it to.
pub fn event_type(action: &Action) -> (&'static str, &'static str) {
    match action {
        Action::Landing => ("page", "/v1/p"),
        Action::Identify => ("identify", "/v1/i"),
        _ => ("track", "/v1/t"),
    }
}

/// Everything about one event that is not the visitor.
#[derive(Debug)]
pub struct EventMeta<'a> {
    pub message_id: &'a str,
    pub timestamp: &'a str,
    /// Set for single-event requests, where analytics.js puts them in the body.
    pub write_key: Option<&'a str>,
    pub sent_at: Option<&'a str>,
}

/// Writes the event for `action`, which `visitor` has just taken, as JSON.
pub fn encode(visitor: &Visitor, action: &Action, catalog: &Catalog, meta: &EventMeta<'_>, out: &mut Vec<u8>) {
    let session = visitor.session.as_ref();
    let path = session.map_or("/", |s| s.path.as_str());
    let landing = *action == Action::Landing;
    let campaign = session.and_then(|s| s.source.campaign).filter(|_| landing);
    let search = campaign
        .map(|c| format!("?utm_source={}&utm_medium={}&utm_campaign={}", c.source, c.medium, c.name))
        .unwrap_or_default();
    let referrer = match (landing, session) {
        (true, Some(s)) => s.source.referrer.to_owned(),
        (false, Some(Session { previous_path: Some(previous), .. })) => format!("{SITE}{previous}"),
        _ => String::new(),
    };
    let title = page_title(path, catalog);
    let url = format!("{SITE}{path}{search}");
    let page = PageContext { path, referrer: &referrer, search: &search, title: &title, url: &url };
    let (kind, _) = event_type(action);
    // Formatted only for the actions that carry them: most events are page and product views.
    let cart_id = match action {
        Action::ProductAdded { .. } | Action::CartViewed => format!("cart-{}", &visitor.anonymous_id[..8]),
        _ => String::new(),
    };
    let order_id = match action {
        Action::CheckoutStarted | Action::OrderCompleted => {
            format!("o-{}-{}", &visitor.anonymous_id[..8], visitor.orders + 1)
        }
        _ => String::new(),
    };
    let line_items = || -> Vec<LineItem<'_>> {
        visitor.cart.iter().map(|&(p, quantity)| LineItem::of(catalog.product(p), Some(quantity), None)).collect()
    };
    let cart_value: f64 = visitor.cart.iter().map(|&(p, q)| catalog.product(p).price * f64::from(q)).sum();
    let cart_value = (cart_value * 100.0).round() / 100.0;
    let (event, properties): (Option<&str>, Option<Properties<'_>>) = match action {
        Action::Landing => (None, Some(Properties::Page(page))),
        Action::Identify => (None, None),
        Action::ProductListViewed { category } => {
            let name = catalog.category_name(*category);
            let products = (1..)
                .zip(catalog.top_in(*category, 4))
                .map(|(position, p)| LineItem::of(catalog.product(p), None, Some(position)))
                .collect();
            (Some("Product List Viewed"), Some(Properties::List { list_id: slug(name), category: name, products }))
        }
        Action::ProductsSearched { query } => (Some("Products Searched"), Some(Properties::Search { query })),
        Action::ProductViewed { product } => {
            let p = catalog.product(*product);
            (
                Some("Product Viewed"),
                Some(Properties::Product { item: LineItem::of(p, None, None), url: &url, cart_id: None }),
            )
        }
        Action::ProductAdded { product } => {
            let p = catalog.product(*product);
            let quantity = visitor.cart.iter().find(|(i, _)| i == product).map_or(1, |(_, q)| *q);
            let item = LineItem::of(p, Some(quantity), None);
            (Some("Product Added"), Some(Properties::Product { item, url: &url, cart_id: Some(&cart_id) }))
        }
        Action::CartViewed => {
            (Some("Cart Viewed"), Some(Properties::Cart { cart_id: &cart_id, products: line_items() }))
        }
        Action::CheckoutStarted | Action::OrderCompleted => {
            let shipping = if cart_value >= 50.0 { 0.0 } else { 4.99 };
            let tax = (cart_value * 0.08 * 100.0).round() / 100.0;
            let order = Order {
                order_id: &order_id,
                value: cart_value,
                revenue: cart_value,
                shipping,
                tax,
                total: ((cart_value + shipping + tax) * 100.0).round() / 100.0,
                currency: "USD",
                products: line_items(),
            };
            let name = if *action == Action::CheckoutStarted { "Checkout Started" } else { "Order Completed" };
            (Some(name), Some(Properties::Order(order)))
        }
    };
    let email = visitor.user_id.as_ref().map(|id| format!("{id}@mail.example"));
    let traits = match action {
        Action::Identify => Some(Traits { email: email.as_deref(), locale: visitor.locale, orders: visitor.orders }),
        _ => None,
    };
    let name = match action {
        Action::Landing => Some(if path == "/" { "Home" } else { "Product" }),
        _ => None,
    };
    let wire = WireEvent {
        kind,
        event,
        name,
        properties,
        traits,
        anonymous_id: &visitor.anonymous_id,
        user_id: visitor.user_id.as_deref(),
        message_id: meta.message_id,
        timestamp: meta.timestamp,
        context: Context {
            library: LIBRARY,
            page: PageContext { path, referrer: &referrer, search: &search, title: &title, url: &url },
            user_agent: visitor.user_agent,
            locale: visitor.locale,
            timezone: visitor.timezone,
            campaign,
        },
        integrations: Integrations {},
        write_key: meta.write_key,
        sent_at: meta.sent_at,
    };
    serde_json::to_writer(out, &wire).unwrap_or_else(|e| unreachable!("writing JSON to a Vec cannot fail: {e}"));
}

fn page_title(path: &str, catalog: &Catalog) -> String {
    if let Some(id) = path.strip_prefix("/products/") {
        let name = catalog.index_of(id).map(|i| catalog.product(i).name.as_str());
        return format!("{} | Shop", name.unwrap_or("Product"));
    }
    let title = match path {
        "/" => "Shop: gifts, gadgets and groceries",
        "/cart" => "Your cart | Shop",
        "/checkout" => "Checkout | Shop",
        "/checkout/thank-you" => "Thank you | Shop",
        p if p.starts_with("/search") => "Search results | Shop",
        _ => "Category | Shop",
    };
    title.to_owned()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Properties<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<Traits<'a>>,
    anonymous_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    message_id: &'a str,
    timestamp: &'a str,
    context: Context<'a>,
    integrations: Integrations,
    #[serde(skip_serializing_if = "Option::is_none")]
    write_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    library: Library,
    page: PageContext<'a>,
    user_agent: &'a str,
    locale: &'a str,
    timezone: &'a str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "campaign")]
    campaign: Option<Campaign>,
}

fn campaign<S: serde::Serializer>(c: &Option<Campaign>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Utm<'a> {
        source: &'a str,
        medium: &'a str,
        name: &'a str,
    }
    match c {
        Some(c) => Utm { source: c.source, medium: c.medium, name: c.name }.serialize(s),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Copy, Serialize)]
struct Library {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Integrations {}

#[derive(Serialize)]
struct PageContext<'a> {
    path: &'a str,
    referrer: &'a str,
    search: &'a str,
    title: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct Traits<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    locale: &'a str,
    orders: u32,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Properties<'a> {
    Page(PageContext<'a>),
    Product {
        #[serde(flatten)]
        item: LineItem<'a>,
        url: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cart_id: Option<&'a str>,
    },
    List {
        list_id: String,
        category: &'a str,
        products: Vec<LineItem<'a>>,
    },
    Search {
        query: &'a str,
    },
    Cart {
        cart_id: &'a str,
        products: Vec<LineItem<'a>>,
    },
    Order(Order<'a>),
}

#[derive(Serialize)]
struct Order<'a> {
    order_id: &'a str,
    value: f64,
    revenue: f64,
    shipping: f64,
    tax: f64,
    total: f64,
    currency: &'a str,
    products: Vec<LineItem<'a>>,
}

#[derive(Serialize)]
struct LineItem<'a> {
    product_id: &'a str,
    sku: &'a str,
    name: &'a str,
    category: &'a str,
    brand: &'a str,
    price: f64,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u32>,
}

impl<'a> LineItem<'a> {
    fn of(p: &'a Product, quantity: Option<u32>, position: Option<u32>) -> Self {
        Self {
            product_id: &p.id,
            sku: &p.sku,
            name: &p.name,
            category: &p.category,
            brand: &p.brand,
            price: p.price,
            currency: &p.currency,
            quantity,
            position,
        }
    }
}
