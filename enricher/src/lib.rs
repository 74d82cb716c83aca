//! The enricher service: product joins, sessions and windows over the raw topics (not built yet; see the enricher issue).
