//! The `coliseum` binary: parses the command line and runs one command.

mod cli;
mod commands;
mod config;
mod demo;

use clap::Parser;
use cli::{ApiKeysCommand, Cli, Command, UsersCommand};
use coliseum_http::{app, observability};
use config::FileConfig;

/// glibc's allocator spends a third of ingestion's CPU in malloc and free
/// under many threads (measured with perf); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    observability::init_tracing();
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
