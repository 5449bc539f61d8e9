//! The `gantry` binary: configuration, logging, runtime, then `app::run`.

use gantry::{app, config};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if gantry::tools::wanted(&args) {
        std::process::exit(gantry::tools::run(&args));
    }
    let cfg = config::load_from(args.clone()).unwrap_or_else(|e| e.exit());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cfg.log_level.as_str()));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.event_threads.max(1))
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gantry: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(app::run(cfg, args)) {
        eprintln!("gantry: {e}");
        std::process::exit(1);
    }
}
