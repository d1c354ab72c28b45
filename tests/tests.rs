//! Integration tests: one test binary (as ripgrep does), one module per area.

mod cli;
mod golden;
mod properties;
mod util;
