//! The Lambda Runtime API glue: cold start (settings with SSM parameters, the mapping, the
//! producer) and the invocation loop. The only module that touches `lambda_runtime`.

use std::time::{Duration, Instant};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

use super::{Function, HandlerError, deadline_from_epoch_ms};
use crate::pipeline::Pipeline;
use crate::sink::kafka::KafkaSink;

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match e {
            HandlerError::Event(_) => "InvalidKafkaEvent",
            HandlerError::Undelivered { .. } => "DeliveryFailed",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// Cold-start failures, each naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Mapping(#[from] crate::plan::LoadError),
    #[error(transparent)]
    Producer(#[from] crate::sink::SinkError),
}

/// Cold start, then serve the Lambda Runtime API until the process is stopped. `started` is taken
/// first thing in `main`, so `init_ms` covers runtime setup, settings, mapping and producer.
pub async fn run(started: Instant) -> Result<(), lambda_runtime::Error> {
    crate::logging::init(true, "info");
    let function = match cold_start().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            return Err(e.into());
        }
    };
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        mapping = function.pipeline.plan.name(),
        fields = function.pipeline.plan.field_count(),
        partial_batch = function.partial_batch,
        "ready"
    );
    let function = &function;
    // The event arrives as its checked JSON text, not as a `Value`: a tree of a 6 MB event costs
    // a string per field and most of an invocation's overhead, and the decoder reads the text.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        function.handle(event.payload.get(), deadline).await
    }))
    .await
}

/// Reads settings (resolving `parameter://` values from SSM), compiles the mapping and creates the
/// producer: one clear error if any fails.
pub async fn cold_start() -> Result<Function<KafkaSink>, ColdStartError> {
    let layers = crate::config::Layers::environment();
    let settings =
        crate::config::ssm::settings_with_parameters(|name: &str| layers.get(name), crate::config::ssm::lambda_client)
            .await?;
    let (_, plan) = crate::plan::load_file(&settings.mapping_file)?;
    let sink = KafkaSink::new(&settings.producer)?;
    Ok(Function {
        pipeline: Pipeline::new(plan, settings.router()),
        sink,
        partial_batch: settings.partial_batch,
        delivery_margin: Duration::from_millis(settings.delivery_margin_ms),
    })
}
