use platform::config::{exit_on_error, Env};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = exit_on_error(cashvio_auth::Config::from_env(&Env::load()));
    platform::telemetry::init("auth");
    let app = cashvio_auth::Application::build(config).await?;
    platform::shutdown::cancel_on_signal(app.shutdown_token());
    app.run_until_stopped().await
}
