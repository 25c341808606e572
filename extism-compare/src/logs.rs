//! The log lines plugins write through Extism's host: Extism emits them as `tracing` events
//! of target `extism::pdk`; a layer keeps their level and text.

use std::fmt::Debug;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};

static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        LINES.lock().unwrap().push((level, message.0));
    }
}

/// Installs the capturing subscriber for the whole process, every level enabled (so a
/// plugin's `get_log_level` answers trace). Call once, before any plugin exists.
pub fn install() {
    let layer = Capture.with_filter(Targets::new().with_target("extism::pdk", Level::TRACE));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("no other subscriber is installed");
}

/// The lines logged since the last call, as `(level, text)`, oldest first.
pub fn take() -> Vec<(String, String)> {
    std::mem::take(&mut *LINES.lock().unwrap())
}
