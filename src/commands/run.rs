//! `mesh-ingest run`: the service, until SIGTERM or SIGINT.

use crate::app::Application;
use crate::configuration::Settings;
use crate::shutdown;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown::signal()).await
}
