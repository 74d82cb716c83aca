#!/usr/bin/env python3
"""Generate data/products.jsonl: a deterministic sample catalog of 200 products.

Each line is one JSON object with id ("p1".."p200"), sku, name, category,
subcategory, brand, price (USD, always 2 decimals) and in_stock. The random generator
is seeded, so re-running this script rewrites the file byte-for-byte identically.

Usage: python3 data/generate_products.py
"""
import json
import random
from pathlib import Path

COUNT = 200
SEED = 42
OUT = Path(__file__).with_name("products.jsonl")

# category -> (brands, {subcategory: ([nouns], (min_price, max_price))})
CATALOG = {
    "Electronics": (["Voltix", "Nimbus", "Auralis", "Kestrel"], {
        "Headphones": (["Wireless Earbuds", "Over-Ear Headphones", "Sport Earphones"], (19, 249)),
        "Accessories": (["USB-C Cable", "Power Bank", "Wall Charger", "Phone Stand"], (6, 59)),
        "Smart Home": (["Smart Plug", "Smart Bulb", "Video Doorbell", "Indoor Camera"], (12, 179)),
    }),
    "Books": (["Larkspur Press", "Northwind Books", "Bluequill"], {
        "Fiction": (["Mystery Novel", "Fantasy Saga Vol. 1", "Historical Romance"], (7, 28)),
        "Non-Fiction": (["Field Guide to Birds", "History of Coffee", "Memoir"], (10, 35)),
        "Cooking": (["Weeknight Cookbook", "Baking Basics", "Plant-Based Kitchen"], (14, 40)),
    }),
    "Home & Kitchen": (["Hearthly", "Casa Verde", "Ironleaf"], {
        "Cookware": (["Cast Iron Skillet", "Nonstick Frying Pan", "Stock Pot"], (18, 129)),
        "Kitchen Tools": (["Chef's Knife", "Cutting Board", "Measuring Cups Set"], (6, 89)),
        "Decor": (["Throw Pillow", "Scented Candle", "Wall Clock"], (9, 69)),
    }),
    "Sports": (["Trailmark", "Apex Motion", "Riverstone"], {
        "Fitness": (["Yoga Mat", "Resistance Bands", "Adjustable Dumbbell"], (9, 199)),
        "Outdoor": (["Trekking Poles", "Daypack 20L", "Camping Lantern"], (15, 149)),
        "Cycling": (["Bike Helmet", "Bike Light Set", "Water Bottle Cage"], (8, 119)),
    }),
    "Toys": (["Brightblock", "Tinker & Co", "Happy Otter"], {
        "Building": (["Building Bricks Set", "Magnetic Tiles", "Marble Run"], (14, 99)),
        "Games": (["Family Board Game", "Card Game", "Jigsaw Puzzle 1000pc"], (8, 49)),
        "Plush": (["Plush Bear", "Plush Dinosaur", "Plush Bunny"], (9, 34)),
    }),
    "Clothing": (["Northloom", "Urban Thread", "Pinecrest"], {
        "Tops": (["Cotton T-Shirt", "Flannel Shirt", "Crewneck Sweater"], (12, 79)),
        "Bottoms": (["Slim Jeans", "Chino Pants", "Running Shorts"], (18, 89)),
        "Outerwear": (["Rain Jacket", "Puffer Vest", "Fleece Hoodie"], (35, 199)),
    }),
    "Beauty": (["Lumina", "Petal & Stone", "Verdure"], {
        "Skincare": (["Daily Moisturizer", "Vitamin C Serum", "Gentle Cleanser"], (9, 59)),
        "Hair Care": (["Argan Shampoo", "Repair Conditioner", "Hair Oil"], (7, 39)),
        "Fragrance": (["Eau de Parfum", "Body Mist", "Solid Perfume"], (15, 120)),
    }),
    "Grocery": (["Meadow Farms", "Golden Harvest", "Bean & Leaf"], {
        "Coffee & Tea": (["Whole Bean Coffee 12oz", "Green Tea 40ct", "Cold Brew Concentrate"], (5, 24)),
        "Snacks": (["Trail Mix", "Sea Salt Chips", "Dark Chocolate Bar"], (2, 12)),
        "Pantry": (["Extra Virgin Olive Oil", "Wildflower Honey", "Basmati Rice 2lb"], (3, 22)),
    }),
}
VARIANTS = ["", "", "Classic", "Pro", "Mini", "Plus", "Deluxe", "Essential"]


def make_product(rng: random.Random, n: int) -> dict:
    category = rng.choice(sorted(CATALOG))
    brands, subcats = CATALOG[category]
    subcategory = rng.choice(sorted(subcats))
    nouns, (lo, hi) = subcats[subcategory]
    variant = rng.choice(VARIANTS)
    brand = rng.choice(brands)
    name = " ".join(part for part in (brand, variant, rng.choice(nouns)) if part)
    price = round(rng.randint(lo, hi) + rng.choice([0.29, 0.49, 0.79, 0.95, 0.99]), 2)
    return {
        "id": f"p{n}",
        "sku": f"SKU-{n:05d}",
        "name": name,
        "category": category,
        "subcategory": subcategory,
        "brand": brand,
        "price": price,
        "currency": "USD",
        "in_stock": rng.random() < 0.85,
    }


def main() -> None:
    rng = random.Random(SEED)
    with OUT.open("w", encoding="utf-8", newline="\n") as f:
        for n in range(1, COUNT + 1):
            f.write(json.dumps(make_product(rng, n), separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"wrote {COUNT} products to {OUT}")


if __name__ == "__main__":
    main()
