//! `docker logs`: reads a container's json-file log (written by its
//! monitor, see [`crate::monitor::JsonLog`]) back to stdout and stderr.
//!
//! The log is two files, `PATH.1` (older) and `PATH`; the monitor only
//! appends whole lines to `PATH` and rotates by renaming it to `PATH.1`
//! and creating a new `PATH`. [`copy_log`] reads them in that order and,
//! with `follow`, keeps reading what is appended, across rotations, until
//! the container has finished and nothing is left: every entry is written
//! once, in order (unless the monitor rotates three times within one
//! 50 ms poll: the files in between are lost).
//! A malformed line is skipped with a warning, never an error.
//!
//! Times are [`Timestamp`]s, nanoseconds since the Unix epoch, parsed and
//! printed as RFC 3339 by hand; [`parse_time`] reads `--since`/`--until`
//! the way docker's CLI does.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a followed log is checked for new entries and rotation.
const POLL: Duration = Duration::from_millis(50);
/// How much is read from a log file at once.
const CHUNK: usize = 64 * 1024;
const NANOS_PER_SEC: i128 = 1_000_000_000;

/// What `docker logs` flags ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// `-f`: keep reading until the container has finished.
    pub follow: bool,
    /// `--tail N`: only the last N entries of the existing log (None: all).
    pub tail: Option<usize>,
    /// `-t`: each entry prefixed with its own `time` and a space.
    pub timestamps: bool,
    /// `--since`: entries at or after this time.
    pub since: Option<Timestamp>,
    /// `--until`: entries at or before this time; reading stops at the
    /// first later entry (and, following, once this time has passed).
    pub until: Option<Timestamp>,
}

/// Why reading a log failed: a bad flag value, or the log file named.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid value for \"{flag}\": {reason}")]
    InvalidTime { flag: String, reason: TimeError },
    #[error("cannot open log {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot read log {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the entries of log {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Why a `--since`/`--until` value was refused, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("failed to parse value as time or duration: {0:?}")]
    Unparsable(String),
    /// Looked like a date (it has a `-`) but is not a valid one.
    #[error("parsing time {value:?}: {problem}")]
    BadTime { value: String, problem: TimeProblem },
}

/// What is wrong with an RFC 3339 time (Go's `time.Parse` messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeProblem {
    #[error("cannot parse {0:?}")]
    Syntax(String),
    #[error("{0} out of range")]
    OutOfRange(&'static str),
    #[error("extra text: {0:?}")]
    ExtraText(String),
    #[error("missing time zone")]
    NoZone,
}

/// A point in time: nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i128);

impl Timestamp {
    pub fn from_unix_nanos(nanos: i128) -> Timestamp {
        Timestamp(nanos)
    }

    pub fn unix_nanos(self) -> i128 {
        self.0
    }

    pub fn from_system_time(time: SystemTime) -> Timestamp {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(after.as_nanos() as i128),
            Err(before) => Timestamp(-(before.duration().as_nanos() as i128)),
        }
    }

    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Parses RFC 3339 as the log's `time` field holds it (what
    /// `runtime_core::state::now_rfc3339` writes:
    /// `2026-11-24T10:00:00.123456789Z`), or with an offset, with any
    /// number of fraction digits or none.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimeProblem> {
        parse_datetime(text, None)
    }
}

/// RFC 3339 in UTC with nine fraction digits (docker's RFC3339NanoFixed).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(NANOS_PER_SEC) as i64;
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let of_day = secs.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )
    }
}

/// Parses a `--since`/`--until` value as docker's CLI does: a Go duration
/// (`10m`, `1h30m`, `1.5h`, `300ms`) counts back from `now`; otherwise
/// RFC 3339 (with or without fraction, seconds, minutes, time; without a
/// zone it is local time) or a date; otherwise Unix seconds (`1700000000`,
/// `1700000000.5`). `flag` names the flag in the error ("since").
pub fn parse_time(flag: &str, value: &str, now: SystemTime) -> Result<Timestamp, LogError> {
    parse_time_at(value, now, local_offset(now)).map_err(|reason| LogError::InvalidTime {
        flag: flag.to_string(),
        reason,
    })
}

/// [`parse_time`] with the local zone's offset (seconds east of UTC)
/// given, so that it can be tested in any zone.
fn parse_time_at(value: &str, now: SystemTime, local: i64) -> Result<Timestamp, TimeError> {
    let now = Timestamp::from_system_time(now);
    // docker: `value != "0"`, so that a bare 0 is Unix time 0.
    if value != "0"
        && let Some(back) = parse_go_duration(value)
    {
        return Ok(Timestamp(now.0 - back));
    }
    match parse_datetime(value, Some(local)) {
        Ok(time) => Ok(time),
        Err(problem) if value.contains('-') => Err(TimeError::BadTime {
            value: value.to_string(),
            problem,
        }),
        Err(_) => parse_unix(value).ok_or_else(|| TimeError::Unparsable(value.to_string())),
    }
}

/// The local time zone's offset from UTC at `now`, in seconds.
fn local_offset(now: SystemTime) -> i64 {
    let secs = Timestamp::from_system_time(now).0.div_euclid(NANOS_PER_SEC) as libc::time_t;
    // SAFETY: tm is plain data that localtime_r fills; both pointers are
    // valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff
}

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]` then one or more
/// `number unit`, the number with an optional fraction, the unit one of
/// ns, us (µs), ms, s, m, h; or `0`.
fn parse_go_duration(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after) = rest.split_at(whole_len);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(unit)?;
        if !fraction.is_empty() {
            let digits = &fraction[..fraction.len().min(18)];
            value += digits.parse::<u128>().ok()? * unit / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(value)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return None;
        }
        rest = after;
    }
    Some(if negative {
        -(total as i128)
    } else {
        total as i128
    })
}

/// Unix seconds with an optional decimal fraction, as docker's
/// `timetypes.ParseTimestamps`.
fn parse_unix(text: &str) -> Option<Timestamp> {
    let (secs, fraction) = match text.split_once('.') {
        Some((secs, fraction)) => (secs, Some(fraction)),
        None => (text, None),
    };
    let secs: i64 = secs.strip_prefix('+').unwrap_or(secs).parse().ok()?;
    let mut nanos = 0;
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nanos = fraction_nanos(fraction);
    }
    Some(Timestamp(i128::from(secs) * NANOS_PER_SEC + nanos))
}

/// Decimal fraction digits as nanoseconds; digits past the ninth dropped.
fn fraction_nanos(digits: &str) -> i128 {
    let mut nanos = 0;
    for i in 0..9 {
        let digit = digits.as_bytes().get(i).map_or(0, |d| d - b'0');
        nanos = nanos * 10 + i128::from(digit);
    }
    nanos
}

/// `YYYY-MM-DD[Thh[:mm[:ss[.fraction]]]][Z|±hh:mm]`; without a zone, the
/// time is at `local` seconds east of UTC (or refused without one).
fn parse_datetime(text: &str, local: Option<i64>) -> Result<Timestamp, TimeProblem> {
    let mut scan = Scan { text, pos: 0 };
    let year = scan.number(4)?;
    scan.expect(b"-")?;
    let month = scan.number(2)?;
    scan.expect(b"-")?;
    let day = scan.number(2)?;
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    if scan.eat(b"Tt").is_some() {
        hour = scan.number(2)?;
        if scan.eat(b":").is_some() {
            minute = scan.number(2)?;
            if scan.eat(b":").is_some() {
                second = scan.number(2)?;
                if scan.eat(b".").is_some() {
                    nanos = scan.fraction()?;
                }
            }
        }
    }
    let offset = match scan.eat(b"Zz+-") {
        Some(b'Z' | b'z') => 0,
        Some(sign) => {
            let hours = scan.number(2)?;
            scan.expect(b":")?;
            let minutes = scan.number(2)?;
            if hours >= 24 {
                return Err(TimeProblem::OutOfRange("time zone offset hour"));
            }
            if minutes >= 60 {
                return Err(TimeProblem::OutOfRange("time zone offset minute"));
            }
            let offset = hours * 3600 + minutes * 60;
            if sign == b'-' { -offset } else { offset }
        }
        None => match local {
            Some(local) if scan.rest().is_empty() => local,
            _ if !scan.rest().is_empty() => {
                return Err(TimeProblem::ExtraText(scan.rest().to_string()));
            }
            _ => return Err(TimeProblem::NoZone),
        },
    };
    if !scan.rest().is_empty() {
        return Err(TimeProblem::ExtraText(scan.rest().to_string()));
    }
    if !(1..=12).contains(&month) {
        return Err(TimeProblem::OutOfRange("month"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(TimeProblem::OutOfRange("day"));
    }
    if hour >= 24 {
        return Err(TimeProblem::OutOfRange("hour"));
    }
    if minute >= 60 {
        return Err(TimeProblem::OutOfRange("minute"));
    }
    if second >= 60 {
        return Err(TimeProblem::OutOfRange("second"));
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Ok(Timestamp(i128::from(secs) * NANOS_PER_SEC + nanos))
}

/// A cursor over ASCII syntax.
struct Scan<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scan<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn syntax(&self) -> TimeProblem {
        TimeProblem::Syntax(self.rest().to_string())
    }

    /// Exactly `width` digits.
    fn number(&mut self, width: usize) -> Result<i64, TimeProblem> {
        let digits = self
            .rest()
            .as_bytes()
            .get(..width)
            .ok_or_else(|| self.syntax())?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(self.syntax());
        }
        self.pos += width;
        Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    /// One or more digits after a decimal point, as nanoseconds.
    fn fraction(&mut self) -> Result<i128, TimeProblem> {
        let rest = self.rest();
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return Err(self.syntax());
        }
        self.pos += len;
        Ok(fraction_nanos(&rest[..len]))
    }

    /// The next byte if it is one of `any`.
    fn eat(&mut self, any: &[u8]) -> Option<u8> {
        let next = *self.rest().as_bytes().first()?;
        any.contains(&next).then(|| {
            self.pos += 1;
            next
        })
    }

    fn expect(&mut self, one: &[u8]) -> Result<(), TimeProblem> {
        self.eat(one).map(|_| ()).ok_or_else(|| self.syntax())
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Copies the entries of the log at `path` (after its backup `PATH.1`) to
/// `stdout` and `stderr` by their stream, as `docker logs` shows them:
/// `log` text as is, after `time` and a space with `timestamps`. `--tail`
/// counts lines from the end across both files and applies before
/// `--since`/`--until`. A log that does not exist is empty. With `follow`,
/// new entries are copied as they come, polling every 50 ms and across
/// rotations, until `finished()` is true and nothing more is there.
pub fn copy_log(
    path: &Path,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    finished: &dyn Fn() -> bool,
) -> Result<(), LogError> {
    let backup = backup_path(path);
    let mut copier = Copier {
        log: path,
        opts,
        stdout,
        stderr,
        pending: Vec::new(),
        chunk: vec![0; CHUNK],
    };
    let mut source = start(path, &backup, opts.tail)?;
    loop {
        // Asked before reading, so whatever was written before the
        // container finished is read before stopping.
        let done =
            !opts.follow || finished() || opts.until.is_some_and(|until| Timestamp::now() > until);
        let mut progressed = false;
        if let Some(current) = source.as_mut() {
            match copier.read_available(current)? {
                ControlFlow::Break(()) => return copier.flush(),
                ControlFlow::Continue(n) => progressed |= n > 0,
            }
        }
        let current_id = source.as_ref().map(|current| current.id);
        if current_id.is_none() || file_id(path)? != current_id {
            // Rotated (or not there yet): the monitor writes no more to
            // the current file, so what it holds now is all of it.
            if let Some(current) = source.as_mut() {
                match copier.read_available(current)? {
                    ControlFlow::Break(()) => return copier.flush(),
                    ControlFlow::Continue(n) => progressed |= n > 0,
                }
            }
            if let Some(next) = next_source(path, &backup, current_id)? {
                if let Some(current) = &source {
                    copier.drop_partial(&current.name);
                }
                source = Some(next);
                continue;
            }
        }
        copier.flush()?;
        if !progressed {
            if done {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}

/// `PATH.1`, the rotated log.
fn backup_path(path: &Path) -> PathBuf {
    let mut backup = path.as_os_str().to_owned();
    backup.push(".1");
    PathBuf::from(backup)
}

/// A file is known by its device and inode: names move on rotation.
type FileId = (u64, u64);

/// One of the log's files, open, and where reading has got to.
struct Source {
    file: File,
    id: FileId,
    offset: u64,
    /// The name it was opened by (for messages).
    name: PathBuf,
}

fn open_source(path: &Path) -> Result<Option<Source>, LogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|source| LogError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(Source {
        file,
        id: (meta.dev(), meta.ino()),
        offset: 0,
        name: path.to_path_buf(),
    }))
}

/// The id of the file `path` names now, if there is one.
fn file_id(path: &Path) -> Result<Option<FileId>, LogError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The file to read after `current` (None: nothing read yet): the backup
/// if it is not `current` (it was `PATH` after it: read when rotations
/// came faster than polls, or first of all), else a `PATH` that is not
/// `current`.
fn next_source(
    path: &Path,
    backup: &Path,
    current: Option<FileId>,
) -> Result<Option<Source>, LogError> {
    for candidate in [backup, path] {
        if let Some(source) = open_source(candidate)?
            && Some(source.id) != current
        {
            return Ok(Some(source));
        }
    }
    Ok(None)
}

/// Where reading starts: the oldest entry, or the last `tail` lines of
/// the backup and the log together.
fn start(path: &Path, backup: &Path, tail: Option<usize>) -> Result<Option<Source>, LogError> {
    let Some(tail) = tail else {
        return next_source(path, backup, None);
    };
    // Both files as of one moment: the log opened first, then the backup,
    // then checked to still be the log (else a rotation came between).
    let mut files = Vec::new();
    for _ in 0..5 {
        let current = open_source(path)?;
        let older = open_source(backup)?;
        let stable = file_id(path)? == current.as_ref().map(|s| s.id);
        files = older.into_iter().chain(current).collect();
        if stable {
            break;
        }
    }
    let mut wanted = tail;
    while let Some(mut source) = files.pop() {
        let (offset, missing) =
            tail_start(&source.file, wanted).map_err(|source_err| LogError::Read {
                path: source.name.clone(),
                source: source_err,
            })?;
        if missing == 0 || files.is_empty() {
            source.offset = offset;
            return Ok(Some(source));
        }
        wanted = missing;
    }
    Ok(None)
}

/// Where the last `lines` complete lines of `file` start, and how many of
/// them it lacks. A last line without its newline (being written) is not
/// counted and is read after them.
fn tail_start(file: &File, lines: usize) -> io::Result<(u64, usize)> {
    let mut chunk = vec![0; CHUNK];
    let mut pos = file.metadata()?.len();
    let mut end_found = false;
    let mut found = 0;
    while pos > 0 {
        let from = pos.saturating_sub(CHUNK as u64);
        let chunk = &mut chunk[..(pos - from) as usize];
        file.read_exact_at(chunk, from)?;
        for (i, byte) in chunk.iter().enumerate().rev() {
            if *byte != b'\n' {
                continue;
            }
            // The first newline from the end ends the last complete line;
            // each further one ends the line before the ones counted.
            if end_found {
                found += 1;
            }
            end_found = true;
            if found == lines {
                return Ok((from + i as u64 + 1, 0));
            }
        }
        pos = from;
    }
    let complete = if end_found { found + 1 } else { 0 };
    Ok((0, lines - complete))
}

/// An entry as the json-file log holds it.
#[derive(serde::Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// Turns log lines into output.
struct Copier<'a> {
    log: &'a Path,
    opts: &'a LogOptions,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
    /// Read bytes after the last complete line.
    pending: Vec<u8>,
    chunk: Vec<u8>,
}

impl Copier<'_> {
    /// Reads `source` to its end and writes its complete entries; how
    /// many bytes that was, or Break at an entry past `until`.
    fn read_available(&mut self, source: &mut Source) -> Result<ControlFlow<(), usize>, LogError> {
        let mut total = 0;
        loop {
            let n = source
                .file
                .read_at(&mut self.chunk, source.offset)
                .map_err(|e| LogError::Read {
                    path: source.name.clone(),
                    source: e,
                })?;
            if n == 0 {
                return Ok(ControlFlow::Continue(total));
            }
            source.offset += n as u64;
            total += n;
            let chunk = &self.chunk[..n];
            let Some(last) = chunk.iter().rposition(|b| *b == b'\n') else {
                self.pending.extend_from_slice(chunk);
                continue;
            };
            let mut lines = std::mem::take(&mut self.pending);
            lines.extend_from_slice(&chunk[..=last]);
            self.pending.extend_from_slice(&chunk[last + 1..]);
            for line in lines.split(|b| *b == b'\n') {
                if line.is_empty() {
                    continue;
                }
                if self.write_entry(line, &source.name)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
    }

    /// Writes one line's entry if it passes the filters; Break once past
    /// `until`.
    fn write_entry(&mut self, line: &[u8], file: &Path) -> Result<ControlFlow<()>, LogError> {
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(log = %file.display(), %error, "skipping a malformed log entry");
                return Ok(ControlFlow::Continue(()));
            }
        };
        let time = match Timestamp::parse_rfc3339(&entry.time) {
            Ok(time) => time,
            Err(error) => {
                tracing::warn!(log = %file.display(), %error, "skipping a log entry with a bad time");
                return Ok(ControlFlow::Continue(()));
            }
        };
        if self.opts.since.is_some_and(|since| time < since) {
            return Ok(ControlFlow::Continue(()));
        }
        if self.opts.until.is_some_and(|until| time > until) {
            return Ok(ControlFlow::Break(()));
        }
        let out: &mut dyn Write = match &*entry.stream {
            "stdout" => self.stdout,
            "stderr" => self.stderr,
            other => {
                tracing::warn!(log = %file.display(), stream = other, "skipping a log entry of an unknown stream");
                return Ok(ControlFlow::Continue(()));
            }
        };
        let written = if self.opts.timestamps {
            out.write_all(entry.time.as_bytes())
                .and_then(|()| out.write_all(b" "))
                .and_then(|()| out.write_all(entry.log.as_bytes()))
        } else {
            out.write_all(entry.log.as_bytes())
        };
        written.map_err(|source| self.write_error(source))?;
        Ok(ControlFlow::Continue(()))
    }

    /// A file left for the next ends in a line without a newline: the
    /// monitor never writes one, so it is cut short; drop it.
    fn drop_partial(&mut self, file: &Path) {
        if !self.pending.is_empty() {
            tracing::warn!(log = %file.display(), bytes = self.pending.len(), "skipping a truncated log entry");
            self.pending.clear();
        }
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.stdout
            .flush()
            .and_then(|()| self.stderr.flush())
            .map_err(|source| self.write_error(source))
    }

    fn write_error(&self, source: io::Error) -> LogError {
        LogError::Write {
            path: self.log.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{JsonLog, entry};
    use std::cell::Cell;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const T0: &str = "2026-11-24T10:00:00.000000000Z";

    /// 2026-11-24T10:00:00Z plus `secs`, as the monitor writes times.
    fn at(secs: i64) -> String {
        Timestamp(rfc(T0).0 + i128::from(secs) * NANOS_PER_SEC).to_string()
    }

    fn rfc(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn line(stream: &str, text: &str, secs: i64) -> String {
        entry(stream, text.as_bytes(), &at(secs))
    }

    /// `out_N\n` on stdout at T0 + N seconds, for each N.
    fn lines(range: std::ops::Range<i64>) -> String {
        range
            .map(|n| line("stdout", &format!("out_{n}\n"), n))
            .collect()
    }

    fn outs(range: std::ops::Range<i64>) -> String {
        range.map(|n| format!("out_{n}\n")).collect()
    }

    /// The log as `PATH.1` and `PATH` holding these lines.
    fn log_files(backup: &str, current: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct-json.log");
        if !backup.is_empty() {
            std::fs::write(backup_path(&path), backup).unwrap();
        }
        if !current.is_empty() {
            std::fs::write(&path, current).unwrap();
        }
        (dir, path)
    }

    fn read(path: &Path, opts: &LogOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        copy_log(path, opts, &mut out, &mut err, &|| true).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn stdout_of(path: &Path, opts: &LogOptions) -> String {
        read(path, opts).0
    }

    fn tail(n: usize) -> LogOptions {
        LogOptions {
            tail: Some(n),
            ..LogOptions::default()
        }
    }

    fn follow(tail: Option<usize>) -> LogOptions {
        LogOptions {
            follow: true,
            tail,
            ..LogOptions::default()
        }
    }

    #[test]
    fn timestamps_parse_what_the_monitor_writes_and_print_back() {
        let now = runtime_core::state::now_rfc3339();
        let parsed = rfc(&now);
        assert_eq!(parsed.to_string(), now);
        let wall = Timestamp::now().0 - parsed.0;
        assert!((0..60 * NANOS_PER_SEC).contains(&wall), "{now}");

        assert_eq!(rfc("1970-01-01T00:00:00Z").unix_nanos(), 0);
        assert_eq!(
            rfc("2026-11-24T10:00:00.5Z").to_string(),
            "2026-11-24T10:00:00.500000000Z"
        );
        assert_eq!(
            rfc("2024-02-29T23:59:59.123456789+01:00").to_string(),
            "2024-02-29T22:59:59.123456789Z"
        );
        assert_eq!(rfc("1969-12-31T23:59:59.999999999Z").unix_nanos(), -1);
        assert_eq!(
            Timestamp::from_unix_nanos(-1).to_string(),
            "1969-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
                .to_string(),
            "2023-11-14T22:13:20.000000000Z"
        );
        for days in [-800_000, -1, 0, 59, 60, 365 * 30 + 7, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }

        for bad in [
            "",
            "2026-11-24T10:00:00",
            "2026-11-24 10:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:00:00.Z",
            "2026-11-24T10:00:00Zx",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    const NOW_SECS: u64 = 1_764_000_000; // 2025-11-24T16:00:00Z

    fn since(value: &str, local: i64) -> Result<Timestamp, TimeError> {
        parse_time_at(value, UNIX_EPOCH + Duration::from_secs(NOW_SECS), local)
    }

    fn secs(value: &str) -> f64 {
        since(value, 0).unwrap().0 as f64 / 1e9
    }

    #[test]
    fn parse_time_reads_rfc3339_and_dates() {
        let t = |value: &str, local| since(value, local).unwrap().to_string();
        assert_eq!(
            t("2026-11-24T10:00:00Z", 0),
            "2026-11-24T10:00:00.000000000Z"
        );
        assert_eq!(
            t("2026-11-24T10:00:00.123456789Z", 0),
            "2026-11-24T10:00:00.123456789Z"
        );
        assert_eq!(
            t("2026-11-24T10:00:00+02:00", 0),
            "2026-11-24T08:00:00.000000000Z"
        );
        assert_eq!(
            t("2026-11-24T10:00:00.25-05:30", 0),
            "2026-11-24T15:30:00.250000000Z"
        );
        assert_eq!(t("2026-11-24T10:00Z", 0), "2026-11-24T10:00:00.000000000Z");
        assert_eq!(t("2026-11-24T10Z", 0), "2026-11-24T10:00:00.000000000Z");
        assert_eq!(t("2026-11-24Z", 0), "2026-11-24T00:00:00.000000000Z");
        // Without a zone: local time.
        assert_eq!(t("2026-11-24", 0), "2026-11-24T00:00:00.000000000Z");
        assert_eq!(t("2026-11-24", 3600), "2026-11-23T23:00:00.000000000Z");
        assert_eq!(
            t("2026-11-24T10:00:00", -7200),
            "2026-11-24T12:00:00.000000000Z"
        );
        assert_eq!(
            t("2026-11-24T10:00:00.5", 0),
            "2026-11-24T10:00:00.500000000Z"
        );
        assert_eq!(t("2026-11-24T10:30", 0), "2026-11-24T10:30:00.000000000Z");
        assert_eq!(t("2026-11-24T10", 0), "2026-11-24T10:00:00.000000000Z");
    }

    #[test]
    fn parse_time_reads_unix_seconds_and_durations() {
        assert_eq!(secs("1700000000"), 1_700_000_000.0);
        assert_eq!(
            since("1700000000.5", 0).unwrap().0,
            1_700_000_000_500_000_000
        );
        assert_eq!(
            since("1700000000.000000001", 0).unwrap().0,
            1_700_000_000_000_000_001
        );
        assert_eq!(secs("0"), 0.0);
        let now = NOW_SECS as f64;
        assert_eq!(secs("10m"), now - 600.0);
        assert_eq!(secs("1h30m"), now - 5400.0);
        assert_eq!(secs("45s"), now - 45.0);
        assert_eq!(secs("1.5h"), now - 5400.0);
        assert_eq!(secs("300ms"), now - 0.3);
        assert_eq!(secs("1m0.5s"), now - 60.5);
        assert_eq!(secs(".5s"), now - 0.5);
        assert_eq!(
            since("2us", 0).unwrap().0,
            i128::from(NOW_SECS) * NANOS_PER_SEC - 2_000
        );
        assert_eq!(
            since("7µs", 0).unwrap().0,
            i128::from(NOW_SECS) * NANOS_PER_SEC - 7_000
        );
        assert_eq!(
            since("3ns", 0).unwrap().0,
            i128::from(NOW_SECS) * NANOS_PER_SEC - 3
        );
        // A negative duration is in the future, as in Go.
        assert_eq!(secs("-10m"), now + 600.0);
        assert_eq!(secs("+10m"), now - 600.0);
    }

    #[test]
    fn parse_time_refuses_in_dockers_words() {
        let err = |value: &str| {
            parse_time("since", value, UNIX_EPOCH + Duration::from_secs(NOW_SECS))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("xyz"),
            r#"invalid value for "since": failed to parse value as time or duration: "xyz""#
        );
        for bad in [
            "",
            "10",
            "10x",
            "1h30",
            ".",
            "1..5s",
            "1700000000.",
            "1700000000.5x",
            "10:00",
            "99999999999999999999",
        ] {
            if bad == "10" {
                continue; // a Unix time
            }
            assert_eq!(
                err(bad),
                format!(
                    r#"invalid value for "since": failed to parse value as time or duration: {bad:?}"#
                )
            );
        }
        assert_eq!(
            err("2026-13-01"),
            r#"invalid value for "since": parsing time "2026-13-01": month out of range"#
        );
        assert_eq!(
            err("2026-02-30"),
            r#"invalid value for "since": parsing time "2026-02-30": day out of range"#
        );
        assert_eq!(
            err("2026-11-24T25:00Z"),
            r#"invalid value for "since": parsing time "2026-11-24T25:00Z": hour out of range"#
        );
        assert_eq!(
            err("2026-11-24T10:00:00Zjunk"),
            r#"invalid value for "since": parsing time "2026-11-24T10:00:00Zjunk": extra text: "junk""#
        );
        assert_eq!(
            err("2026-1-24"),
            r#"invalid value for "since": parsing time "2026-1-24": cannot parse "1-24""#
        );
        assert_eq!(
            err("-5"),
            r#"invalid value for "since": parsing time "-5": cannot parse "-5""#
        );
        let until = parse_time("until", "nope", SystemTime::now()).unwrap_err();
        assert!(
            matches!(until, LogError::InvalidTime { ref flag, reason: TimeError::Unparsable(_) } if flag == "until")
        );
        assert!(
            until
                .to_string()
                .starts_with(r#"invalid value for "until": "#)
        );
        // The real local zone is some whole offset.
        assert!(parse_time("since", "2026-11-24", SystemTime::now()).is_ok());
    }

    #[test]
    fn all_entries_of_both_files_by_stream() {
        let backup = lines(0..3) + &line("stderr", "oops\n", 3);
        let current = line("stdout", "no newline", 4) + &lines(5..6);
        let (_dir, path) = log_files(&backup, &current);
        let (out, err) = read(&path, &LogOptions::default());
        assert_eq!(out, outs(0..3) + "no newline" + &outs(5..6));
        assert_eq!(err, "oops\n");
    }

    #[test]
    fn tail_counts_lines_across_the_rotation() {
        let (_dir, path) = log_files(&lines(0..5), &lines(5..8));
        assert_eq!(stdout_of(&path, &tail(2)), outs(6..8));
        assert_eq!(stdout_of(&path, &tail(3)), outs(5..8));
        assert_eq!(stdout_of(&path, &tail(4)), outs(4..8));
        assert_eq!(stdout_of(&path, &tail(8)), outs(0..8));
        assert_eq!(stdout_of(&path, &tail(100)), outs(0..8));
        assert_eq!(stdout_of(&path, &tail(0)), "");
        assert_eq!(stdout_of(&path, &LogOptions::default()), outs(0..8));

        // Only a backup (between rename and create), only a log.
        let (_dir, path) = log_files(&lines(0..5), "");
        assert_eq!(stdout_of(&path, &tail(2)), outs(3..5));
        let (_dir, path) = log_files("", &lines(0..5));
        assert_eq!(stdout_of(&path, &tail(2)), outs(3..5));
        assert_eq!(stdout_of(&path, &tail(9)), outs(0..5));
    }

    #[test]
    fn tail_over_a_real_rotated_log_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct-json.log");
        let mut log = JsonLog::open(&path, 1000).unwrap();
        for n in 0..40 {
            log.write("stdout", format!("out_{n}\n").as_bytes())
                .unwrap();
        }
        assert!(backup_path(&path).exists());
        let all = stdout_of(&path, &LogOptions::default());
        let kept: Vec<&str> = all.split_inclusive('\n').collect();
        assert!(kept.len() < 40 && kept.last() == Some(&"out_39\n"), "{all}");
        let tail_n = kept.len() - 1;
        assert_eq!(stdout_of(&path, &tail(tail_n)), kept[1..].concat());

        // More than a chunk read backwards at once.
        let long = "x".repeat(100_000);
        let (_dir, path) = log_files(
            &line("stdout", &long, 0),
            &(line("stdout", &long, 1) + &lines(2..4)),
        );
        assert_eq!(stdout_of(&path, &tail(3)), long.clone() + &outs(2..4));
        assert_eq!(stdout_of(&path, &tail(4)).len(), 2 * long.len() + 12);
    }

    #[test]
    fn since_and_until_filter_inclusively_after_tail() {
        let (_dir, path) = log_files(&lines(0..5), &lines(5..10));
        let window = |since: Option<i64>, until: Option<i64>, tail| {
            stdout_of(
                &path,
                &LogOptions {
                    since: since.map(|s| rfc(&at(s))),
                    until: until.map(|s| rfc(&at(s))),
                    tail,
                    ..LogOptions::default()
                },
            )
        };
        assert_eq!(window(Some(3), None, None), outs(3..10));
        assert_eq!(window(None, Some(6), None), outs(0..7));
        assert_eq!(window(Some(3), Some(6), None), outs(3..7));
        assert_eq!(window(Some(20), None, None), "");
        // Tail first, then the filters (as docker).
        assert_eq!(window(Some(3), None, Some(2)), outs(8..10));
        assert_eq!(window(None, Some(6), Some(5)), outs(5..7));
        // Fractions of a second count.
        let just_after = Timestamp(rfc(&at(3)).0 + 1);
        assert_eq!(
            stdout_of(
                &path,
                &LogOptions {
                    since: Some(just_after),
                    ..LogOptions::default()
                }
            ),
            outs(4..10)
        );
    }

    #[test]
    fn timestamps_prefix_each_entry_with_its_time() {
        let (_dir, path) = log_files("", &(lines(0..2) + &line("stderr", "e", 2)));
        let (out, err) = read(
            &path,
            &LogOptions {
                timestamps: true,
                ..LogOptions::default()
            },
        );
        assert_eq!(out, format!("{} out_0\n{} out_1\n", at(0), at(1)));
        assert_eq!(err, format!("{} e", at(2)));
        // As written, even in another form.
        let (_dir, path) = log_files("", &entry("stdout", b"x\n", "2026-11-24T11:00:00.5+01:00"));
        assert_eq!(
            stdout_of(
                &path,
                &LogOptions {
                    timestamps: true,
                    since: Some(rfc(T0)),
                    ..LogOptions::default()
                }
            ),
            "2026-11-24T11:00:00.5+01:00 x\n"
        );
    }

    #[test]
    fn malformed_lines_are_skipped_and_a_partial_last_line_waits() {
        let current = [
            lines(0..1),
            "not json\n".to_string(),
            "\n".to_string(),
            "{\"log\":\"no time\\n\",\"stream\":\"stdout\"}\n".to_string(),
            entry("stdout", b"bad time\n", "yesterday"),
            entry("stdin", b"odd stream\n", &at(1)),
            lines(2..3),
            line("stdout", "half\n", 3)[..20].to_string(),
        ]
        .concat();
        let (_dir, path) = log_files("", &current);
        assert_eq!(
            stdout_of(&path, &LogOptions::default()),
            outs(0..1) + &outs(2..3)
        );
        // Not UTF-8 in the log itself: still an entry skipped.
        std::fs::write(
            &path,
            [b"\xff\xfe\n".as_slice(), lines(0..1).as_bytes()].concat(),
        )
        .unwrap();
        assert_eq!(stdout_of(&path, &LogOptions::default()), outs(0..1));
    }

    #[test]
    fn a_missing_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.log");
        assert_eq!(
            read(&path, &LogOptions::default()),
            (String::new(), String::new())
        );
        assert_eq!(read(&path, &tail(3)), (String::new(), String::new()));
        assert_eq!(read(&path, &follow(None)), (String::new(), String::new()));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct-json.log");
        std::fs::create_dir(&path).unwrap();
        let err = copy_log(
            &path,
            &LogOptions::default(),
            &mut Vec::new(),
            &mut Vec::new(),
            &|| true,
        )
        .unwrap_err();
        assert!(matches!(err, LogError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("ct-json.log"), "{err}");

        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (_dir, path) = log_files("", &lines(0..1));
        let err = copy_log(
            &path,
            &LogOptions::default(),
            &mut Broken,
            &mut Vec::new(),
            &|| true,
        )
        .unwrap_err();
        assert!(matches!(err, LogError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("ct-json.log"), "{err}");
    }

    /// Follows with `finished` running `steps` one per poll (then true):
    /// rotations happen exactly between reads.
    fn follow_scripted(path: &Path, opts: &LogOptions, steps: Vec<Box<dyn Fn()>>) -> String {
        let next = Cell::new(0);
        let finished = || {
            let step = next.get();
            next.set(step + 1);
            match steps.get(step) {
                Some(run) => {
                    run();
                    false
                }
                None => true,
            }
        };
        let mut out = Vec::new();
        copy_log(path, opts, &mut out, &mut Vec::new(), &finished).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn rotate(path: &Path) {
        std::fs::rename(path, backup_path(path)).unwrap();
    }

    #[test]
    fn follow_reads_appends_and_rotations_between_polls() {
        let (_dir, path) = log_files(&lines(0..2), &lines(2..4));
        let p = path.clone();
        let steps: Vec<Box<dyn Fn()>> = vec![
            Box::new({
                let p = p.clone();
                move || append(&p, &lines(4..5))
            }),
            // Written, then rotated before the next poll, then more.
            Box::new({
                let p = p.clone();
                move || {
                    append(&p, &lines(5..6));
                    rotate(&p);
                    append(&p, &lines(6..7))
                }
            }),
            // Renamed, not yet created.
            Box::new({
                let p = p.clone();
                move || {
                    append(&p, &lines(7..8));
                    rotate(&p)
                }
            }),
            Box::new({
                let p = p.clone();
                move || append(&p, &lines(8..9))
            }),
            // Two rotations between polls: the middle file is the backup.
            Box::new({
                let p = p.clone();
                move || {
                    append(&p, &lines(9..10));
                    rotate(&p);
                    append(&p, &lines(10..11));
                    rotate(&p);
                    append(&p, &lines(11..12))
                }
            }),
            // A line being written when polled.
            Box::new({
                let p = p.clone();
                move || append(&p, &line("stdout", "out_12\n", 12)[..10])
            }),
            Box::new({
                let p = p.clone();
                move || append(&p, &line("stdout", "out_12\n", 12)[10..])
            }),
        ];
        assert_eq!(follow_scripted(&path, &follow(None), steps), outs(0..13));
    }

    #[test]
    fn follow_with_tail_zero_prints_only_new_entries() {
        let (_dir, path) = log_files(&lines(0..2), &lines(2..4));
        let p = path.clone();
        let steps: Vec<Box<dyn Fn()>> = vec![Box::new(move || {
            append(&p, &lines(4..5));
            rotate(&p);
            append(&p, &lines(5..6))
        })];
        assert_eq!(follow_scripted(&path, &follow(Some(0)), steps), outs(4..6));

        let (_dir, path) = log_files(&lines(0..2), &lines(2..4));
        let p = path.clone();
        let steps: Vec<Box<dyn Fn()>> = vec![Box::new(move || append(&p, &lines(4..5)))];
        assert_eq!(follow_scripted(&path, &follow(Some(3)), steps), outs(1..5));
    }

    #[test]
    fn follow_waits_for_the_log_to_appear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct-json.log");
        let p = path.clone();
        let steps: Vec<Box<dyn Fn()>> = vec![
            Box::new(|| {}),
            Box::new({
                let p = p.clone();
                move || {
                    append(&p, &lines(0..1));
                    rotate(&p);
                    append(&p, &lines(1..2))
                }
            }),
            Box::new(move || append(&p, &lines(2..3))),
        ];
        assert_eq!(follow_scripted(&path, &follow(Some(0)), steps), outs(0..3));
    }

    #[test]
    fn follow_stops_at_until() {
        // An entry past until ends it, though the container runs on.
        let (_dir, path) = log_files("", &lines(0..5));
        let opts = LogOptions {
            until: Some(rfc(&at(2))),
            ..follow(None)
        };
        let mut out = Vec::new();
        copy_log(&path, &opts, &mut out, &mut Vec::new(), &|| false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), outs(0..3));
        // So does the time passing until.
        let (_dir, path) = log_files("", &lines(0..2));
        let opts = LogOptions {
            until: Some(Timestamp::now()),
            ..follow(None)
        };
        let mut out = Vec::new();
        copy_log(&path, &opts, &mut out, &mut Vec::new(), &|| false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), outs(0..2));
    }

    #[test]
    fn follow_sees_a_writer_thread_through_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct-json.log");
        let mut log = JsonLog::open(&path, 1000).unwrap();
        for n in 0..3 {
            log.write("stdout", format!("out_{n}\n").as_bytes())
                .unwrap();
        }
        let finished = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let finished = finished.clone();
            move || {
                // About 11 entries a file: a rotation every ~200 ms, slower
                // than the polls.
                for n in 3..40 {
                    std::thread::sleep(Duration::from_millis(20));
                    let stream = if n % 5 == 0 { "stderr" } else { "stdout" };
                    log.write(stream, format!("out_{n}\n").as_bytes()).unwrap();
                }
                finished.store(true, Ordering::SeqCst);
            }
        });
        let (mut out, mut err) = (Vec::new(), Vec::new());
        copy_log(&path, &follow(None), &mut out, &mut err, &|| {
            finished.load(Ordering::SeqCst)
        })
        .unwrap();
        writer.join().unwrap();
        let expect = |on_stderr: bool| -> String {
            (0..40)
                .filter(|n| (n >= &3 && n % 5 == 0) == on_stderr)
                .map(|n| format!("out_{n}\n"))
                .collect()
        };
        assert_eq!(String::from_utf8(out).unwrap(), expect(false));
        assert_eq!(String::from_utf8(err).unwrap(), expect(true));
    }
}
