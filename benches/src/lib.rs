//! Internal benchmark crate for switchboard: criterion micro-benchmarks live in `benches/`,
//! one binary per area. Figures and the commands that produced them are recorded in
//! `docs/benchmarks.md`.
