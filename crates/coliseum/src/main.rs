//! The `coliseum` binary: parses the command line and runs one command.

mod cli;
mod commands;
mod config;
mod demo;
#[cfg(feature = "heap-count")]
mod heap_count;

use clap::Parser;
use cli::{ApiKeysCommand, Cli, Command, UsersCommand};
use coliseum_http::{app, observability};
use config::FileConfig;

/// glibc's allocator spends a third of ingestion's CPU in malloc and free
/// under many threads (measured with perf); mimalloc does not.
#[cfg(not(feature = "heap-count"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The same allocator, counting the live heap for `coliseum_heap_bytes`.
#[cfg(feature = "heap-count")]
#[global_allocator]
static ALLOCATOR: heap_count::Counting = heap_count::Counting;

/// `mi_option_purge_delay` in mimalloc 2 and 3 (`mimalloc.h`); the binding
/// names no constant for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc gives freed pages back to the system a second after they are
/// freed. The read caches replace tile sums and boards of megabytes many
/// times a second, and under the mixed read benchmark that second held
/// 250 MiB more at start and 400 MiB more after the reads, for at most a
/// tenth of the throughput (BENCHMARKS.md, sixth step): give them back at
/// once. Only the default changes: an operator's `MIMALLOC_PURGE_DELAY`
/// still wins.
#[allow(unsafe_code)]
fn return_freed_pages_at_once() {
    // SAFETY: a plain store into the allocator's table of options, made
    // first thing in `main`, before any other thread exists to read it.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, 0) };
}

/// Keeps the process off transparent huge pages (as
/// `MIMALLOC_ALLOW_THP=0` would, but mimalloc reads that option when it
/// starts, before `main`): a page given back and touched again came back
/// as 2 MiB zeroed whole, however little of it was used. Without them the
/// engine held 50 MiB less at start and 220 MiB less after the mixed
/// benchmark's reads, at the same throughput (BENCHMARKS.md, sixteenth
/// step). Processes it starts (`coliseum bench`'s) inherit the flag.
#[allow(unsafe_code)]
fn without_huge_pages() {
    // SAFETY: `prctl` with integer arguments only, each the `unsigned
    // long` the kernel reads: it sets a flag of this process's memory map,
    // which the kernel reads on each page fault. Where it fails (an old
    // kernel, a filter), huge pages stay as they were.
    #[cfg(target_os = "linux")]
    let _ = unsafe {
        libc::prctl(
            libc::PR_SET_THP_DISABLE,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
}

fn main() -> std::process::ExitCode {
    return_freed_pages_at_once();
    without_huge_pages();
    let cli = Cli::parse();
    observability::init_tracing();
    #[cfg(feature = "heap-count")]
    heap_count::report_every_second();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("coliseum: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("coliseum: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => {
            let settings = config::serve_settings(&args, &file)?;
            // Held until the process ends: dropping it flushes the reports.
            let _sentry = settings
                .sentry_dsn
                .as_ref()
                .map(|dsn| observability::init_sentry(dsn.expose()))
                .transpose()?;
            if settings.demo {
                demo::serve(settings).await
            } else {
                let application = app::Application::build(settings).await?;
                commands::announce(&application);
                application.run_until(app::shutdown_signal()).await
            }
        }
        Command::Migrate(args) => commands::migrate(&file.database_url(args.database_url.as_ref())).await,
        Command::Users(UsersCommand::Create(args)) => {
            let database_url = file.database_url(args.database.database_url.as_ref());
            commands::create_user(&database_url, &args).await
        }
        Command::ApiKeys(ApiKeysCommand::Create(args)) => {
            let database_url = file.database_url(args.database.database_url.as_ref());
            commands::create_api_key(&database_url, &args).await
        }
        Command::Generate(args) => commands::generate(&args),
        Command::Rebuild(args) => {
            commands::rebuild(&file.database_url(args.database_url.as_ref()), file.fx_table()?).await
        }
        Command::Bench(args) => commands::bench(&args.args),
    }
}

#[cfg(test)]
mod tests {
    /// The option `return_freed_pages_at_once` sets is the purge delay:
    /// mimalloc 3's default for it is 1,000 ms, and no other option's is.
    #[test]
    #[allow(unsafe_code)]
    fn the_option_set_at_start_is_the_purge_delay() {
        // SAFETY: reads one of the allocator's options; nothing sets it in tests.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(default, 1_000);
    }

    #[test]
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn the_process_asks_for_no_huge_pages() {
        super::without_huge_pages();
        // SAFETY: reads a flag of this process's memory map.
        let disabled = unsafe {
            libc::prctl(
                libc::PR_GET_THP_DISABLE,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        assert_eq!(disabled, 1);
    }
}
