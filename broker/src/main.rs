//! `sluiced [server.properties] [--override key=value]...` — the Sluice broker daemon.

use std::process::ExitCode;

use sluice_broker::startup;

#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

fn main() -> ExitCode {
    startup::init_tracing();
    match startup::run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sluiced: {e}");
            ExitCode::from(1)
        }
    }
}
