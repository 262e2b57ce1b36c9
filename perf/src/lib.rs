//! `sluice-perf` as a library: the parts other crates' tests drive directly.
//!
//! - [`verify`]: the Jepsen-style checker (produce uniquely identified records, read them
//!   back, name every lost, duplicated, reordered or disagreeing one). The cluster fault
//!   tests run [`verify::run_blocking`] on one thread while they kill brokers on another,
//!   or drive its phases ([`verify::produce`], [`verify::read`], [`verify::check`]).
//! - [`report`]: the output formats shared with the binary.
//!
//! Like the binary, it talks to brokers only through `sluice-net`'s client.

pub mod report;
pub mod verify;
