//! `ThreadedSink`: another sink run on a thread of its own, so that rendering and writing reports
//! (JSON serialisation, Markdown, files) overlap the analysis instead of waiting for it.

use crate::ReportSink;
use fa_model::{IncidentReport, Report, SummaryReport};
use std::io;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Reports waiting for the writer at most: memory stays bounded however fast reports come.
const QUEUE: usize = 1024;

enum Msg {
    Report(Box<Report>),
    Incident(Box<IncidentReport>),
    Summary(Box<SummaryReport>),
}

type Inner = Box<dyn ReportSink + Send>;

enum State {
    Running {
        tx: SyncSender<Msg>,
        writer: JoinHandle<(Inner, io::Result<()>)>,
        sent: u64,
    },
    /// The writer has stopped (finished, or failed): its sink is back here.
    Done(Inner),
    /// Only while switching between the two.
    Switching,
}

/// Reports are handed to the writer in order and written in that order; the first write error
/// stops the writer, and the next call here returns it. `finish` waits for everything sent.
pub struct ThreadedSink {
    state: State,
}

impl ThreadedSink {
    pub fn spawn(mut inner: Inner) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("report-writer".into())
            .spawn(move || {
                for msg in rx {
                    let r = match msg {
                        Msg::Report(r) => inner.report(&r),
                        Msg::Incident(r) => inner.incident(&r),
                        Msg::Summary(s) => inner.summary(&s),
                    };
                    if r.is_err() {
                        // Dropping the receiver makes the next send fail: the caller then
                        // collects this error.
                        return (inner, r);
                    }
                }
                (inner, Ok(()))
            })?;
        Ok(ThreadedSink {
            state: State::Running {
                tx,
                writer,
                sent: 0,
            },
        })
    }

    /// Stop the writer after what was sent, and take its sink back with its outcome.
    fn stop(&mut self) -> io::Result<&mut Inner> {
        let outcome = match std::mem::replace(&mut self.state, State::Switching) {
            State::Running { tx, writer, .. } => {
                drop(tx);
                match writer.join() {
                    Ok((inner, r)) => {
                        self.state = State::Done(inner);
                        r
                    }
                    Err(_) => Err(io::Error::other("the report writer thread panicked")),
                }
            }
            other => {
                self.state = other;
                Ok(())
            }
        };
        outcome?;
        match &mut self.state {
            State::Done(inner) => Ok(inner),
            _ => Err(io::Error::other("the report writer is gone")),
        }
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        if let State::Running { tx, sent, .. } = &mut self.state {
            if tx.send(msg).is_ok() {
                *sent += 1;
                return Ok(());
            }
            // The writer stopped on an error: return it.
            self.stop()?;
            return Err(io::Error::other("the report writer stopped"));
        }
        let inner = self.stop()?;
        match msg {
            Msg::Report(r) => inner.report(&r),
            Msg::Incident(r) => inner.incident(&r),
            Msg::Summary(s) => inner.summary(&s),
        }
    }
}

impl ReportSink for ThreadedSink {
    fn report(&mut self, r: &Report) -> io::Result<()> {
        self.send(Msg::Report(Box::new(r.clone())))
    }

    fn report_owned(&mut self, r: Report) -> io::Result<()> {
        self.send(Msg::Report(Box::new(r)))
    }

    fn incident(&mut self, r: &IncidentReport) -> io::Result<()> {
        self.send(Msg::Incident(Box::new(r.clone())))
    }

    fn summary(&mut self, s: &SummaryReport) -> io::Result<()> {
        self.send(Msg::Summary(Box::new(s.clone())))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.stop()?.finish()
    }

    fn written(&self) -> u64 {
        match &self.state {
            State::Running { sent, .. } => *sent,
            State::Done(inner) => inner.written(),
            State::Switching => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamSink;
    use fa_report::Format;
    use std::sync::{Arc, Mutex};

    /// A `Write` the test can read back, failing after `fail_after` bytes when set.
    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>, Option<usize>);
    impl io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let mut v = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
            if self.1.is_some_and(|max| v.len() + b.len() > max) {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            v.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn report(i: usize) -> Report {
        let alert: fa_model::Alert = serde_json::from_value(serde_json::json!({
            "rule": format!("Rule {i}"), "priority": "Warning", "output": format!("alert {i}"),
            "output_fields": {"proc.pid": i},
        }))
        .expect("valid alert");
        Report::skeleton(&alert, format!("summary {i}"), Default::default())
    }

    #[test]
    fn writes_what_the_sink_itself_writes_in_order() {
        let direct = Shared(Arc::default(), None);
        let mut d = StreamSink::new(direct.clone(), Format::Json);
        let threaded = Shared(Arc::default(), None);
        let mut t = ThreadedSink::spawn(Box::new(StreamSink::new(threaded.clone(), Format::Json)))
            .expect("thread starts");
        for i in 0..3000 {
            d.report(&report(i)).expect("writes");
            t.report_owned(report(i)).expect("sends");
        }
        d.finish().expect("finishes");
        t.finish().expect("finishes");
        // After finish it still takes reports (written directly) and counts them.
        t.report(&report(9999)).expect("writes after finish");
        d.report(&report(9999)).expect("writes");
        assert_eq!(t.written(), 3001);
        let a = direct.0.lock().expect("lock").clone();
        let b = threaded.0.lock().expect("lock").clone();
        assert!(a.len() > 100_000);
        assert_eq!(a, b);
    }

    #[test]
    fn a_write_error_comes_back_to_the_caller() {
        let out = Shared(Arc::default(), Some(10_000));
        let mut t = ThreadedSink::spawn(Box::new(StreamSink::new(out, Format::Json)))
            .expect("thread starts");
        let mut failed = None;
        for i in 0..10_000 {
            if let Err(e) = t.report_owned(report(i)) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => t
                .finish()
                .expect_err("the error surfaces at finish at the latest"),
        };
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    }
}
