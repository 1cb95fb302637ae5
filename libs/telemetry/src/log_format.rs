//! Log line formats: tracing-subscriber's text lines, or one JSON object per line, each with
//! `trace_id` and `span_id` when the event happens inside a span.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Trace and span id of the span `event` happens in, as lowercase hex. The span is looked up
/// in the dispatcher rather than in the formatter's context, because each layer has its own
/// filter and the log filter may hide the span that the trace filter kept.
fn trace_ids(event: &Event<'_>) -> Option<(String, String)> {
    // NOTE: this finds the global dispatcher only. Under a scoped dispatcher
    // (`tracing::subscriber::with_default`) lines carry no ids.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let span_id = match event.parent() {
        Some(parent) => parent.clone(),
        None if event.is_contextual() => dispatch.current_span().id()?.clone(),
        None => return None,
    };
    let context = tracing_opentelemetry::get_otel_context(&span_id, &dispatch)?;
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// tracing-subscriber's full text line followed by `trace_id=… span_id=…` inside a span.
pub(crate) struct TextWithTraceIds {
    plain: Format<Full>,
    colored: Format<Full>,
}

impl TextWithTraceIds {
    pub(crate) fn new() -> TextWithTraceIds {
        TextWithTraceIds {
            plain: Format::default().with_ansi(false),
            colored: Format::default().with_ansi(true),
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let format = if writer.has_ansi_escapes() {
            &self.colored
        } else {
            &self.plain
        };
        let mut line = String::new();
        format.format_event(ctx, Writer::new(&mut line), event)?;
        let Some((trace_id, span_id)) = trace_ids(event) else {
            return writer.write_str(&line);
        };
        let body = line.strip_suffix('\n').unwrap_or(&line);
        writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}")
    }
}

/// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`),
/// `spans` (outermost first, each with its name and fields), `trace_id` and `span_id`. Span
/// fields must be recorded with `JsonFields`.
pub(crate) struct JsonWithTraceIds;

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let metadata = event.metadata();

        let mut fields = FieldMap::default();
        event.record(&mut fields);

        let mut line = Map::new();
        line.insert("timestamp".to_owned(), Value::String(timestamp));
        line.insert(
            "level".to_owned(),
            Value::String(metadata.level().to_string()),
        );
        line.insert(
            "target".to_owned(),
            Value::String(metadata.target().to_owned()),
        );
        line.insert("fields".to_owned(), Value::Object(fields.0));
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|span| span_json(&span)).collect();
            line.insert("spans".to_owned(), Value::Array(spans));
        }
        if let Some((trace_id, span_id)) = trace_ids(event) {
            line.insert("trace_id".to_owned(), Value::String(trace_id));
            line.insert("span_id".to_owned(), Value::String(span_id));
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

fn span_json<S>(span: &tracing_subscriber::registry::SpanRef<'_, S>) -> Value
where
    S: for<'a> LookupSpan<'a>,
{
    let mut object = Map::new();
    object.insert("name".to_owned(), Value::String(span.name().to_owned()));
    let extensions = span.extensions();
    if let Some(formatted) = extensions.get::<FormattedFields<JsonFields>>()
        && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(formatted)
    {
        object.extend(fields);
    }
    Value::Object(object)
}

/// Collects an event's fields as JSON values.
#[derive(Default)]
struct FieldMap(Map<String, Value>);

impl Visit for FieldMap {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let number = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_owned(), number);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}
