//! The Lambda Runtime API glue: cold start (settings with SSM parameters, the mapping, the
//! producer) and the invocation loop. The only module that touches `lambda_runtime`.

use std::time::{Duration, Instant};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

use super::{Function, HandlerError, deadline_from_epoch_ms};
use crate::mapping_source::Refresher;
use crate::pipeline::Pipeline;
use crate::sink::kafka::KafkaSink;

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match e {
            HandlerError::Event(_) => "InvalidKafkaEvent",
            HandlerError::Undelivered { .. } => "DeliveryFailed",
            HandlerError::Registry(_) => "SchemaRegistryUnavailable",
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
    Mapping(#[from] crate::mapping_source::SourceError),
    #[error(transparent)]
    Producer(#[from] crate::sink::SinkError),
}

/// Cold start, then serve the Lambda Runtime API until the process is stopped. `started` is taken
/// first thing in `main`, so `init_ms` covers runtime setup, settings, mapping and producer.
pub async fn run(started: Instant) -> Result<(), lambda_runtime::Error> {
    crate::logging::init(true, "info");
    let (function, refreshers) = match cold_start().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            return Err(e.into());
        }
    };
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        mapping = %mappings(&function.pipeline),
        routes = function.pipeline.route_count(),
        fields = function.pipeline.plan().field_count(),
        partial_batch = function.partial_batch,
        location = %refreshers.iter().map(|r| r.source.location.to_string()).collect::<Vec<_>>().join(","),
        refresh_s = refreshers[0].interval.as_secs(),
        "ready"
    );
    // Both live as long as the process; the refresh tasks borrow them while invocations run.
    let function: &'static Function<KafkaSink> = Box::leak(Box::new(function));
    let metrics = crate::telemetry::MetricsSettings::from_env(&function.pipeline.router().function_name);
    let metrics: &'static Option<crate::telemetry::MetricsSettings> = Box::leak(Box::new(metrics));
    let schedules: &'static [RefreshSchedule] =
        Box::leak(refreshers.into_iter().map(RefreshSchedule::new).collect::<Vec<_>>().into_boxed_slice());
    // The event arrives as its checked JSON text, not as a `Value`: a tree of a 6 MB event costs
    // a string per field and most of an invocation's overhead, and the decoder reads the text.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        for schedule in schedules {
            schedule.start_if_due(&function.pipeline);
        }
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        let report = function.run_event(event.payload.get(), deadline).await?;
        if let Some(settings) = metrics {
            // One write of every document: lines of the batch never interleave with log lines.
            let context = crate::telemetry::BatchContext { request_id: Some(&event.context.request_id) };
            let lines = crate::telemetry::emf_lines(&report, settings, context);
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), lines.as_bytes());
        }
        function.respond(&report)
    }))
    .await
}

/// Every route's mapping, `name@version`, comma-separated.
fn mappings(pipeline: &Pipeline) -> String {
    (0..pipeline.route_count()).map(|i| pipeline.route_plan(i).identity()).collect::<Vec<_>>().join(",")
}

/// When a warm instance checks its mapping: at the start of an invocation once the interval has
/// passed, in a task of its own. The batch of that invocation has already taken its mapping (or
/// takes the current one), so it never waits for the check and is never mapped by two versions;
/// a replaced mapping serves from the next batch. A frozen instance checks nothing: the check
/// runs while invocations do, and a long one simply finishes in a later invocation.
struct RefreshSchedule {
    refresher: Refresher,
    last_check: std::sync::Mutex<Instant>,
    running: std::sync::atomic::AtomicBool,
}

impl RefreshSchedule {
    fn new(refresher: Refresher) -> Self {
        RefreshSchedule {
            refresher,
            last_check: std::sync::Mutex::new(Instant::now()),
            running: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn start_if_due(&'static self, pipeline: &'static Pipeline) {
        use std::sync::atomic::Ordering;
        let interval = self.refresher.interval;
        if interval.is_zero() {
            return;
        }
        {
            let mut last = self.last_check.lock().expect("not poisoned");
            if last.elapsed() < interval || self.running.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Instant::now();
        }
        tokio::spawn(async move {
            self.refresher.refresh(pipeline).await;
            self.running.store(false, Ordering::Release);
        });
    }
}

/// Reads settings (resolving `parameter://` values from SSM), fetches the mapping (a file or an
/// S3 object), compiles it and runs its embedded tests, and creates the producer: one clear error
/// if any fails.
pub async fn cold_start() -> Result<(Function<KafkaSink>, Vec<Refresher>), ColdStartError> {
    let layers = crate::config::Layers::environment();
    let settings =
        crate::config::ssm::settings_with_parameters(|name: &str| layers.get(name), crate::config::ssm::lambda_client)
            .await?;
    let (pipeline, refreshers) = crate::mapping_source::load_pipeline(&settings).await?;
    let sink = KafkaSink::new(&settings.producer)?;
    let function = Function {
        pipeline,
        sink,
        partial_batch: settings.partial_batch,
        delivery_margin: Duration::from_millis(settings.delivery_margin_ms),
    };
    Ok((function, refreshers))
}
