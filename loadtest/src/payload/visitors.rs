//! Simulated visitors: a traffic source per session (UTM and referrer mix), browsing with
//! Zipf product popularity, and the cart → checkout → purchase funnel. Each call to
//! `Visitor::next_action` moves one visitor one step along its journey.

use super::catalog::Catalog;

/// UTM parameters of a campaign link.
#[derive(Debug, Clone, Copy)]
pub struct Campaign {
    pub source: &'static str,
    pub medium: &'static str,
    pub name: &'static str,
}

/// Where a session comes from.
#[derive(Debug, Clone, Copy)]
pub struct TrafficSource {
    /// Share of sessions, in percent.
    pub weight: u32,
    /// `document.referrer` of the landing page; empty for direct and email traffic.
    pub referrer: &'static str,
    pub campaign: Option<Campaign>,
    /// Campaign links land on a product page; other traffic lands on the home page.
    pub lands_on_product: bool,
}

const fn source(
    weight: u32,
    referrer: &'static str,
    campaign: Option<Campaign>,
    lands_on_product: bool,
) -> TrafficSource {
    TrafficSource { weight, referrer, campaign, lands_on_product }
}

const fn utm(source: &'static str, medium: &'static str, name: &'static str) -> Option<Campaign> {
    Some(Campaign { source, medium, name })
}

/// A traffic mix typical of a mid-size web shop (weights add up to 100).
pub const TRAFFIC: [TrafficSource; 9] = [
    source(30, "", None, false),
    source(24, "https://www.google.com/", None, false),
    source(4, "https://www.bing.com/", None, false),
    source(12, "https://www.google.com/", utm("google", "cpc", "spring_sale"), true),
    source(8, "https://l.facebook.com/", utm("facebook", "paid_social", "retargeting"), true),
    source(5, "https://l.instagram.com/", utm("instagram", "social", "creator_collab"), true),
    source(10, "", utm("newsletter", "email", "weekly_digest"), false),
    source(4, "https://t.co/", None, false),
    source(3, "https://deals.example.net/", utm("dealsite", "affiliate", "evergreen"), true),
];

/// Browsers and devices, most common first.
pub const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

/// Locale and time zone pairs.
pub const LOCALES: [(&str, &str); 4] =
    [("en-US", "America/New_York"), ("en-GB", "Europe/London"), ("de-DE", "Europe/Berlin"), ("fr-FR", "Europe/Paris")];

pub const SEARCHES: [&str; 6] = ["gift ideas", "wireless", "organic", "running", "kids", "sale"];

/// One step of a visitor's journey.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The first page of a session.
    Landing,
    ProductListViewed {
        category: usize,
    },
    ProductsSearched {
        query: &'static str,
    },
    ProductViewed {
        product: usize,
    },
    ProductAdded {
        product: usize,
    },
    CartViewed,
    CheckoutStarted,
    /// Sign-up or log-in at checkout, before the order.
    Identify,
    OrderCompleted,
}

/// The current session: its source and the page the visitor is on.
#[derive(Debug, Clone)]
pub struct Session {
    pub source: &'static TrafficSource,
    /// Path of the page the visitor is on, for `context.page`.
    pub path: String,
    pub previous_path: Option<String>,
    last: Action,
}

/// One simulated visitor and its state.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub anonymous_id: String,
    pub user_id: Option<String>,
    pub user_agent: &'static str,
    pub locale: &'static str,
    pub timezone: &'static str,
    pub session: Option<Session>,
    /// Product indexes and quantities.
    pub cart: Vec<(usize, u32)>,
    pub orders: u32,
    pub sessions: u32,
}

impl Visitor {
    pub fn new(rng: &mut fastrand::Rng) -> Self {
        let (locale, timezone) = LOCALES[rng.usize(..LOCALES.len())];
        Self {
            anonymous_id: format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                rng.u32(..),
                rng.u16(..),
                rng.u16(..0x1000),
                rng.u16(..0x1000),
                rng.u64(..1 << 48)
            ),
            user_id: None,
            user_agent: USER_AGENTS[pick_weighted(rng, &[45, 25, 15, 10, 5])],
            locale,
            timezone,
            session: None,
            cart: Vec::new(),
            orders: 0,
            sessions: 0,
        }
    }

    /// Advances the journey by one step and says what the visitor did.
    pub fn next_action(&mut self, catalog: &Catalog, rng: &mut fastrand::Rng) -> Action {
        let Some(session) = &self.session else {
            return self.start_session(catalog, rng);
        };
        let roll = rng.u32(..100);
        let browse = |rng: &mut fastrand::Rng| Action::ProductViewed { product: catalog.pick(rng) };
        let next = match &session.last {
            Action::Landing => match roll {
                0..50 => Action::ProductListViewed { category: catalog.pick_category(rng) },
                50..75 => browse(rng),
                75..90 => Action::ProductsSearched { query: SEARCHES[rng.usize(..SEARCHES.len())] },
                _ => return self.end_session(catalog, rng),
            },
            Action::ProductListViewed { category } => match roll {
                0..70 => Action::ProductViewed { product: catalog.pick_in(*category, rng) },
                70..85 => Action::ProductListViewed { category: catalog.pick_category(rng) },
                _ => return self.end_session(catalog, rng),
            },
            Action::ProductsSearched { .. } => match roll {
                0..75 => browse(rng),
                _ => return self.end_session(catalog, rng),
            },
            Action::ProductViewed { product } => match roll {
                0..12 => Action::ProductAdded { product: *product },
                12..57 => browse(rng),
                57..77 => Action::ProductListViewed { category: catalog.pick_category(rng) },
                77..85 if !self.cart.is_empty() => Action::CartViewed,
                _ => return self.end_session(catalog, rng),
            },
            Action::ProductAdded { .. } => match roll {
                0..40 => Action::CartViewed,
                40..85 => browse(rng),
                _ => return self.end_session(catalog, rng),
            },
            Action::CartViewed => match roll {
                0..45 => Action::CheckoutStarted,
                45..80 => browse(rng),
                _ => return self.end_session(catalog, rng),
            },
            Action::CheckoutStarted => match roll {
                0..60 if self.user_id.is_none() => Action::Identify,
                0..60 => Action::OrderCompleted,
                _ => return self.end_session(catalog, rng),
            },
            Action::Identify => Action::OrderCompleted,
            Action::OrderCompleted => {
                self.cart.clear();
                return self.end_session(catalog, rng);
            }
        };
        self.apply(&next, catalog, rng);
        next
    }

    /// The visitor leaves; the next call starts a new session (a return visit).
    fn end_session(&mut self, catalog: &Catalog, rng: &mut fastrand::Rng) -> Action {
        self.session = None;
        self.start_session(catalog, rng)
    }

    fn start_session(&mut self, catalog: &Catalog, rng: &mut fastrand::Rng) -> Action {
        let weights: Vec<u32> = TRAFFIC.iter().map(|s| s.weight).collect();
        let source = &TRAFFIC[pick_weighted(rng, &weights)];
        let path = if source.lands_on_product {
            format!("/products/{}", catalog.product(catalog.pick(rng)).id)
        } else {
            "/".to_owned()
        };
        self.sessions += 1;
        self.session = Some(Session { source, path, previous_path: None, last: Action::Landing });
        Action::Landing
    }

    fn apply(&mut self, action: &Action, catalog: &Catalog, rng: &mut fastrand::Rng) {
        let new_path = match action {
            Action::ProductListViewed { category } => Some(format!("/c/{}", slug(catalog.category_name(*category)))),
            Action::ProductsSearched { query } => Some(format!("/search?q={}", query.replace(' ', "+"))),
            Action::ProductViewed { product } => Some(format!("/products/{}", catalog.product(*product).id)),
            Action::CartViewed => Some("/cart".to_owned()),
            Action::CheckoutStarted => Some("/checkout".to_owned()),
            Action::OrderCompleted => Some("/checkout/thank-you".to_owned()),
            Action::ProductAdded { product } => {
                let quantity = if rng.u32(..10) == 0 { 2 } else { 1 };
                match self.cart.iter_mut().find(|(p, _)| p == product) {
                    Some((_, q)) => *q += quantity,
                    None => self.cart.push((*product, quantity)),
                }
                None
            }
            Action::Identify => {
                self.user_id = Some(format!("user-{}", &self.anonymous_id[..8]));
                None
            }
            Action::Landing => None,
        };
        if let Some(session) = &mut self.session {
            if let Some(path) = new_path {
                session.previous_path = Some(std::mem::replace(&mut session.path, path));
            }
            session.last = action.clone();
        }
        if *action == Action::OrderCompleted {
            self.orders += 1;
        }
    }
}

/// URL slug of a category name.
pub fn slug(name: &str) -> String {
    name.to_ascii_lowercase().replace(" & ", "-").replace(' ', "-")
}

/// An index drawn with the given relative weights.
pub fn pick_weighted(rng: &mut fastrand::Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.u32(..total.max(1));
    for (index, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return index;
        }
        roll -= weight;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_weights_add_up_to_one_hundred() {
        assert_eq!(TRAFFIC.iter().map(|s| s.weight).sum::<u32>(), 100);
    }

    #[test]
    fn journeys_go_through_the_whole_funnel() {
        let catalog = Catalog::builtin();
        let mut rng = fastrand::Rng::with_seed(3);
        let mut visitors: Vec<Visitor> = (0..200).map(|_| Visitor::new(&mut rng)).collect();
        let mut counts = std::collections::HashMap::<&str, u32>::new();
        for step in 0..40_000 {
            let visitor = &mut visitors[step % 200];
            let action = visitor.next_action(&catalog, &mut rng);
            if action == Action::OrderCompleted {
                assert!(!visitor.cart.is_empty(), "an order always has products");
                assert!(visitor.user_id.is_some(), "buyers are identified first");
            }
            let name = match action {
                Action::Landing => "landing",
                Action::ProductListViewed { .. } => "list",
                Action::ProductsSearched { .. } => "search",
                Action::ProductViewed { .. } => "view",
                Action::ProductAdded { .. } => "add",
                Action::CartViewed => "cart",
                Action::CheckoutStarted => "checkout",
                Action::Identify => "identify",
                Action::OrderCompleted => "order",
            };
            *counts.entry(name).or_default() += 1;
        }
        // A funnel: each stage is rarer than the one before it.
        let c = |name| counts.get(name).copied().unwrap_or(0);
        assert!(c("view") > c("add") && c("add") > c("checkout") && c("checkout") > c("order"), "{counts:?}");
        assert!(c("order") > 50, "{counts:?}");
        assert!(c("landing") > 1000, "{counts:?}");
        assert!(visitors.iter().any(|v| v.sessions > 3), "visitors come back");
    }
}
