//! The product catalog the simulated visitors browse, and Zipf popularity over it: a few
//! products get most of the views, as in real shops.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// The sample catalog shipped in `data/products.jsonl`, compiled in so the binary needs no file.
pub const BUILTIN: &str = include_str!("../../../data/products.jsonl");

/// Zipf exponent: 1.0 to 1.2 is what page-popularity studies usually find.
const ZIPF_EXPONENT: f64 = 1.1;

/// One product, as the catalog file describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub category: String,
    pub brand: String,
    pub price: f64,
    pub currency: String,
}

/// Products with their popularity.
#[derive(Debug)]
pub struct Catalog {
    products: Vec<Product>,
    categories: Vec<Category>,
    popularity: Zipf,
    /// Popularity rank → product index, so the best sellers are spread over categories rather
    /// than being the first lines of the file.
    by_rank: Vec<usize>,
    by_id: HashMap<String, usize>,
}

impl Catalog {
    pub fn builtin() -> Self {
        Self::from_jsonl(BUILTIN).unwrap_or_else(|e| unreachable!("the bundled catalog is valid: {e}"))
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading catalog {}", path.display()))?;
        Self::from_jsonl(&text).with_context(|| format!("catalog {}", path.display()))
    }

    /// One JSON product per line.
    pub fn from_jsonl(text: &str) -> anyhow::Result<Self> {
        let products = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(n, line)| serde_json::from_str(line).with_context(|| format!("line {}", n + 1)))
            .collect::<anyhow::Result<Vec<Product>>>()?;
        anyhow::ensure!(!products.is_empty(), "the catalog has no products");
        let mut names: Vec<&str> = products.iter().map(|p| p.category.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut by_rank: Vec<usize> = (0..products.len()).collect();
        fastrand::Rng::with_seed(0x5eed).shuffle(&mut by_rank);
        let categories = names
            .into_iter()
            .map(|name| {
                let ranked: Vec<usize> = by_rank.iter().copied().filter(|&i| products[i].category == name).collect();
                Category { name: name.to_owned(), popularity: Zipf::new(ranked.len(), ZIPF_EXPONENT), by_rank: ranked }
            })
            .collect();
        let by_id = products.iter().enumerate().map(|(i, p)| (p.id.clone(), i)).collect();
        Ok(Self { popularity: Zipf::new(products.len(), ZIPF_EXPONENT), products, categories, by_rank, by_id })
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    pub fn product(&self, index: usize) -> &Product {
        &self.products[index]
    }

    /// A product index drawn by popularity.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> usize {
        self.by_rank[self.popularity.sample(rng)]
    }

    /// A product index of category number `category`, drawn by popularity within it.
    pub fn pick_in(&self, category: usize, rng: &mut fastrand::Rng) -> usize {
        let category = &self.categories[category % self.categories.len()];
        category.by_rank[category.popularity.sample(rng)]
    }

    /// The `n` most popular products of category number `category`.
    pub fn top_in(&self, category: usize, n: usize) -> impl Iterator<Item = usize> + '_ {
        self.categories[category % self.categories.len()].by_rank.iter().copied().take(n)
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// A category number, drawn by the popularity of its products.
    pub fn pick_category(&self, rng: &mut fastrand::Rng) -> usize {
        let category = &self.product(self.pick(rng)).category;
        self.categories.iter().position(|c| &c.name == category).unwrap_or(0)
    }

    pub fn category_name(&self, category: usize) -> &str {
        &self.categories[category % self.categories.len()].name
    }

    pub fn category_count(&self) -> usize {
        self.categories.len()
    }
}

/// The products of one category, most popular first, with popularity among themselves.
#[derive(Debug)]
struct Category {
    name: String,
    by_rank: Vec<usize>,
    popularity: Zipf,
}

/// Zipf distribution over ranks `0..n`: rank k is drawn with weight `1 / (k+1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = (1..=n.max(1))
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(exponent);
                total
            })
            .collect();
        for c in &mut cumulative {
            *c /= total;
        }
        Self { cumulative }
    }

    pub fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64();
        self.cumulative.partition_point(|&c| c < u).min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads_every_product() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.len(), 200);
        assert_eq!(catalog.category_count(), 8);
        assert!(catalog.product(0).price > 0.0);
    }

    #[test]
    fn zipf_favours_low_ranks_in_the_expected_proportion() {
        let zipf = Zipf::new(200, 1.1);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = vec![0u32; 200];
        for _ in 0..200_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // Weight of rank 0 over rank 1 is 2^1.1 ≈ 2.14.
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((1.9..2.4).contains(&ratio), "rank0/rank1 = {ratio}");
        // The top 10% of products get well over half of the views.
        let top: u32 = counts[..20].iter().sum();
        assert!(top > 110_000, "top 20 products got {top} of 200000 views");
        assert!(counts[199] > 0, "the tail is still drawn");
    }

    #[test]
    fn pick_in_category_stays_in_category() {
        let catalog = Catalog::builtin();
        let mut rng = fastrand::Rng::with_seed(1);
        for category in 0..catalog.category_count() {
            let name = catalog.category_name(category).to_owned();
            assert!((0..50).all(|_| catalog.product(catalog.pick_in(category, &mut rng)).category == name));
        }
    }
}
