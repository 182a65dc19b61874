//! Warnings as a user reads them: `postern: warning: <sentence>` on stderr, with no timestamp,
//! level or module path. (`POSTERN_LOG` switches to the usual log format.)

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter.
pub(crate) struct Sentences;

/// The message, then the error it is about, then any other fields in parentheses.
#[derive(Default)]
struct Sentence {
    message: String,
    error: Option<String>,
    details: Vec<String>,
}

impl Visit for Sentence {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record(field, text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }
}

impl Sentence {
    fn record(&mut self, field: &Field, text: String) {
        match field.name() {
            "message" => self.message = text,
            "error" => self.error = Some(text),
            name => self.details.push(format!("{name} {text}")),
        }
    }

    fn render(&self) -> String {
        let mut line = self.message.clone();
        if let Some(error) = &self.error {
            let _ = write!(line, ": {error}");
        }
        if !self.details.is_empty() {
            let _ = write!(line, " ({})", self.details.join(", "));
        }
        line
    }
}

impl<S, N> FormatEvent<S, N> for Sentences
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut sentence = Sentence::default();
        event.record(&mut sentence);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error: ",
            tracing::Level::WARN => "warning: ",
            _ => "",
        };
        writeln!(writer, "postern: {level}{}", sentence.render())
    }
}

#[cfg(test)]
mod tests {
    use super::Sentences;

    #[test]
    fn warnings_are_sentences_without_timestamps_or_module_paths() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || Sink(sink.clone()))
            .event_format(Sentences);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let error = "access denied";
            tracing::warn!(session = "demo-1", %error, "TerminateSession failed");
            tracing::warn!("the stream URL could not be signed; dialling unsigned");
        });
        let text = String::from_utf8(written.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(
            text,
            "postern: warning: TerminateSession failed: access denied (session demo-1)\n\
             postern: warning: the stream URL could not be signed; dialling unsigned\n"
        );
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
