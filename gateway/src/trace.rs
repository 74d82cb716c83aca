//! Spans for one ingest request (parse, validate, produce, delivery), made only when OTLP
//! tracing is configured: without a tracer every call here is a branch on `None`.

use std::borrow::Cow;
use std::future::Future;

use opentelemetry::trace::{FutureExt as _, Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Tracer;

/// The root span of a request and the context its phases hang under.
#[derive(Debug)]
pub(crate) struct RequestTrace {
    parent: Option<(Tracer, Context)>,
}

impl RequestTrace {
    pub(crate) fn start(tracer: Option<&Tracer>, route: &'static str) -> Self {
        let parent = tracer.map(|tracer| {
            let span = tracer
                .span_builder(Cow::Borrowed("ingest"))
                .with_kind(SpanKind::Server)
                .with_attributes([KeyValue::new("http.route", route)])
                .start(tracer);
            (tracer.clone(), Context::current_with_span(span))
        });
        Self { parent }
    }

    /// A child span that ends when dropped.
    pub(crate) fn phase(&self, name: &'static str) -> Option<PhaseGuard> {
        self.parent.as_ref().map(|(tracer, cx)| PhaseGuard { cx: cx.with_span(tracer.start_with_context(name, cx)) })
    }

    /// Runs `future` with the request's context current, so the sink's spans nest under it.
    pub(crate) async fn in_scope<F: Future>(&self, future: F) -> F::Output {
        match &self.parent {
            Some((_, cx)) => future.with_context(cx.clone()).await,
            None => future.await,
        }
    }

    /// Records the request's event counts on the root span.
    pub(crate) fn counts(&self, accepted: usize, rejected: usize) {
        if let Some((_, cx)) = &self.parent {
            let span = cx.span();
            span.set_attribute(KeyValue::new("clickstream.events.accepted", accepted as i64));
            span.set_attribute(KeyValue::new("clickstream.events.rejected", rejected as i64));
        }
    }

    /// Ends the root span, marked as an error with the error's kind if there is one.
    pub(crate) fn finish(&self, error: Option<&str>) {
        if let Some((_, cx)) = &self.parent {
            let span = cx.span();
            if let Some(kind) = error {
                span.set_status(Status::error(kind.to_owned()));
            }
            span.end();
        }
    }
}

/// Ends its span on drop.
#[derive(Debug)]
pub(crate) struct PhaseGuard {
    cx: Context,
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

/// A span under the current context (the request's, set by `in_scope`), if there is a
/// traced request at all; used by the Kafka sink for its produce and delivery phases.
pub(crate) fn child_of_current(tracer: Option<&Tracer>, name: &'static str, records: usize) -> Option<PhaseGuard> {
    let tracer = tracer?;
    let current = Context::current();
    if !current.has_active_span() {
        return None;
    }
    let mut span = tracer.start_with_context(name, &current);
    span.set_attribute(KeyValue::new("messaging.batch.message_count", records as i64));
    Some(PhaseGuard { cx: current.with_span(span) })
}
