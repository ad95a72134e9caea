//! One module per `khien` subcommand.

pub mod collector;
pub mod rules;
pub mod sensor;
pub mod ship;
