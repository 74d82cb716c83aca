//! The open-loop load generator for capacity planning (not built yet; see the load-test issue).
