//! Progress on stderr for long work (`load`, `import`, `save`, prunes),
//! drawn only while stderr is a terminal: piped or redirected, a command
//! prints nothing beyond its own output (nor on a terminal that cannot
//! move the cursor: TERM unset or `dumb`). A bar is cleared when it is
//! dropped, on success and on error alike, so the terminal keeps only the
//! command's own lines.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner moves while nothing is reported.
const TICK: Duration = Duration::from_millis(120);

pub struct Progress(ProgressBar);

impl Progress {
    /// Bytes of an archive read or written: a bar when the total is known,
    /// else a spinner with the count so far.
    pub fn bytes(message: &str, total: Option<u64>) -> Progress {
        let bar = match total {
            Some(total) if shown() => ProgressBar::new(total).with_style(
                style("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                    .progress_chars("=> "),
            ),
            None if shown() => ProgressBar::no_length()
                .with_style(style("{spinner} {msg} {bytes} ({bytes_per_sec})")),
            _ => ProgressBar::hidden(),
        };
        Progress::start(bar, message)
    }

    /// Nothing shown, whatever stderr is (`load -q`).
    pub fn hidden() -> Progress {
        Progress(ProgressBar::hidden())
    }

    /// Work that is not counted in bytes (a prune's steps).
    pub fn spinner(message: &str) -> Progress {
        let bar = if shown() {
            ProgressBar::new_spinner().with_style(style("{spinner} {msg}"))
        } else {
            ProgressBar::hidden()
        };
        Progress::start(bar, message)
    }

    fn start(bar: ProgressBar, message: &str) -> Progress {
        if !bar.is_hidden() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(TICK);
        }
        Progress(bar)
    }

    pub fn set_message(&self, message: &str) {
        self.0.set_message(message.to_owned());
    }

    /// `reader`, counting what is read from it; once all of it is read
    /// the bar turns into a spinner saying `then` (the work that follows
    /// the reading, as storing layers).
    pub fn reader<R: Read>(&self, reader: R, then: &str) -> impl Read {
        Counted {
            inner: reader,
            bar: self.0.clone(),
            then: Some(then.to_owned()),
        }
    }

    /// `writer`, counting what is written to it.
    pub fn writer<W: Write>(&self, writer: W) -> impl Write {
        self.0.wrap_write(writer)
    }
}

struct Counted<R> {
    inner: R,
    bar: ProgressBar,
    /// The message after the end, until it is shown.
    then: Option<String>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        // The end: nothing more, or all a known size (a tar reader may
        // stop at the archive's end marker without reading on).
        let end = (n == 0 && !buf.is_empty())
            || self
                .bar
                .length()
                .is_some_and(|len| self.bar.position() >= len);
        if end && let Some(then) = self.then.take() {
            self.bar.set_style(style("{spinner} {msg}"));
            self.bar.set_message(then);
        }
        Ok(n)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

fn shown() -> bool {
    std::io::stderr().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this file; a bad one is a plain bar.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The size of what `file` (or stdin, for `None`) holds when it is a
/// regular file, for a bar with an end; a pipe has none.
pub fn input_size(file: Option<&File>) -> Option<u64> {
    let meta = match file {
        Some(f) => f.metadata().ok()?,
        None => {
            let stdin = std::io::stdin();
            let fd = stdin.as_fd().try_clone_to_owned().ok()?;
            File::from(fd).metadata().ok()?
        }
    };
    meta.is_file().then_some(meta.len())
}
