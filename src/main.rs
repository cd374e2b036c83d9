//! `membershipd`: the command line. Each subcommand's own `--help` says what it does; a
//! usage error exits 2 (clap's message), a failure 1 with one line, `error: ...` and its
//! causes, never a stack trace.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use membership::rebuild::Difference;
use membership::settings::Settings;
use membership::startup::Application;
use tracing_subscriber::EnvFilter;

/// An event-sourced group-membership service: the Contensis Management API's users and
/// groups, SCIM 2.0 for identity providers, and an event feed, over an embedded or Kafka
/// log. Settings come from config/default.toml (or MEMBERSHIP_CONFIG) and MEMBERSHIP_*
/// variables; see the README.
#[derive(Debug, Parser)]
#[command(name = "membershipd", version)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Serve the HTTP API until SIGTERM or SIGINT, then stop cleanly and exit 0.
    Serve,
    /// Fold the whole log into a new read model and compare it with the live one (exit 1
    /// when they differ).
    Rebuild {
        /// Where to write the new read model (default: a file beside the live one).
        #[arg(long, value_name = "FILE")]
        into: Option<PathBuf>,
    },
    /// Read the log's events.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Print the log's events with their outcomes, from the beginning, then follow new
    /// ones until SIGTERM or SIGINT.
    Tail {
        /// Exit at the end of the log instead of following it.
        #[arg(long)]
        until_end: bool,
        /// Print what the event feed serves, one JSON item per line.
        #[arg(long)]
        json: bool,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_logs() {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    let done = match cli.command {
        Commands::Serve => serve().await,
        Commands::Rebuild { into } => rebuild(into).await,
        Commands::Events(EventsCommand::Tail { until_end, json }) => {
            let options = membership::tail::TailOptions { until_end, json };
            match Settings::load() {
                Ok(settings) => {
                    (membership::tail::run(&settings, options).await).map(|()| ExitCode::SUCCESS)
                }
                Err(error) => Err(error),
            }
        }
    };
    match done {
        Ok(code) => code,
        Err(error) => {
            // One line, with its causes: `{:#}` joins them with ": ".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error at `RUST_LOG` (default `info`): lines for people, or, with
/// `MEMBERSHIP_LOG_FORMAT=json`, one JSON object per line.
fn init_logs() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only for a terminal: a file or a journal gets plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    match std::env::var("MEMBERSHIP_LOG_FORMAT").as_deref() {
        Err(_) | Ok("text") => logs.init(),
        Ok("json") => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        Ok(other) => anyhow::bail!("MEMBERSHIP_LOG_FORMAT={other} is neither text nor json"),
    }
    Ok(())
}

/// Rebuilds the read model from the log into a new file and compares it with the live one;
/// exits with 1 when they differ.
async fn rebuild(into: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load()?;
    let rebuilt = membership::rebuild::run(&settings, into).await?;
    println!(
        "rebuilt {} from {} log entries in {:.2?}",
        rebuilt.path.display(),
        rebuilt.events,
        rebuilt.elapsed
    );
    match rebuilt.difference {
        None => println!("no live read model to compare with"),
        Some(Difference::Equal) => println!("equal to the live read model"),
        Some(Difference::Differs(ours, theirs)) => {
            println!("differs from the live read model:\n  rebuilt: {ours}\n  live:    {theirs}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve() -> anyhow::Result<ExitCode> {
    let settings = Settings::load()?;
    let app = Application::build(&settings).await?;
    // Only a secret generated into the data dir is printed, never one an operator set,
    // and only by the start that made it: output tends to end up in logs that more people
    // read than the data dir's owner.
    let kept = membership::secrets::path(&settings.data.dir);
    match app.stored_client_secret() {
        Some((secret, true)) => println!(
            "bootstrap client: client_id={} client_secret={} (kept in {})",
            settings.admin.client_id,
            secret.expose(),
            kept.display()
        ),
        Some((_, false)) => println!(
            "bootstrap client: client_id={} (its secret is in {})",
            settings.admin.client_id,
            kept.display()
        ),
        None => {}
    }
    if let Some(metrics) = app.metrics_addr() {
        println!("metrics on http://{metrics}/metrics");
    }
    // Printed last, once requests are accepted: scripts wait for this line.
    println!("listening on http://{}", app.addr());
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}
