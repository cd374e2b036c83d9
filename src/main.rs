use anyhow::bail;
use membership::settings::Settings;
use membership::startup::Application;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: membershipd serve";

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let command = std::env::args().nth(1);
    if command.as_deref() != Some("serve") {
        bail!("{USAGE}");
    }
    let settings = Settings::load()?;
    let app = Application::build(&settings).await?;
    let (development_client, development_token) = settings.development_secrets();
    if development_client || development_token {
        println!(
            "WARNING: development credentials in use; set MEMBERSHIP_ADMIN_CLIENT_SECRET and \
             MEMBERSHIP_TOKEN_SECRET before serving anyone"
        );
    }
    // Only the committed development secret is ever printed, never one an operator set.
    if development_client {
        println!(
            "development client: client_id={} client_secret={}",
            settings.admin.client_id,
            settings.admin.client_secret.expose()
        );
    }
    // Printed last, once requests are accepted: scripts wait for this line.
    println!("listening on http://{}", app.addr());
    app.run_until_stopped().await
}
