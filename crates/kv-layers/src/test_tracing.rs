//! A minimal `tracing` subscriber for the unit tests of the layers that emit spans and events
//! (`tracing_layer`, `logging`): it keeps everything in a vector to assert on.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded span or event: its name (the event's message for events), target, level and
/// every field set on it, formatted.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub event: bool,
    pub name: String,
    pub target: String,
    pub level: Level,
    pub fields: Vec<(String, String)>,
}

impl Recorded {
    /// The last value recorded for `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

/// Keeps every span and event in a vector (span ids index it).
#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        let mut log = self.log.lock().unwrap();
        log.push(Recorded {
            event: false,
            name: span.metadata().name().to_owned(),
            target: span.metadata().target().to_owned(),
            level: *span.metadata().level(),
            fields,
        });
        Id::from_u64(log.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut log = self.log.lock().unwrap();
        let r = &mut log[span.into_u64() as usize - 1];
        values.record(&mut Fields(&mut r.fields));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let name = fields
            .iter()
            .find(|(n, _)| n == "message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.log.lock().unwrap().push(Recorded {
            event: true,
            name,
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` on a current-thread runtime with a fresh recorder as the default subscriber, and
/// returns what it recorded.
pub(crate) fn recorded<F: Future<Output = ()>>(f: impl FnOnce() -> F) -> Vec<Recorded> {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    });
    recorder.log.lock().unwrap().clone()
}

/// Asserts that no field of any span or event contains `secret`.
pub(crate) fn assert_absent(log: &[Recorded], secret: &str) {
    for r in log {
        for (n, v) in &r.fields {
            assert!(
                !v.contains(secret),
                "{n} of {} holds the value: {v}",
                r.name
            );
        }
    }
}
