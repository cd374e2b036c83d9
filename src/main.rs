use anyhow::bail;
use membership::rebuild::Difference;
use membership::settings::Settings;
use membership::startup::Application;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: membershipd serve | membershipd rebuild [--into FILE] \
                     | membershipd events tail [--until-end] [--json]";

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve"] => serve().await,
        ["rebuild"] => rebuild(None).await,
        ["rebuild", "--into", file] => rebuild(Some(file.into())).await,
        ["events", "tail", options @ ..] => {
            let mut tail = membership::tail::TailOptions::default();
            for option in options {
                match *option {
                    "--until-end" => tail.until_end = true,
                    "--json" => tail.json = true,
                    _ => bail!("{USAGE}"),
                }
            }
            let options = tail;
            membership::tail::run(&Settings::load()?, options).await
        }
        _ => bail!("{USAGE}"),
    }
}

/// Rebuilds the read model from the log into a new file and compares it with the live one;
/// exits with 1 when they differ.
async fn rebuild(into: Option<std::path::PathBuf>) -> anyhow::Result<()> {
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
            std::process::exit(1);
        }
    }
    Ok(())
}

async fn serve() -> anyhow::Result<()> {
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
    // Printed last, once requests are accepted: scripts wait for this line.
    println!("listening on http://{}", app.addr());
    app.run_until_stopped().await
}
