//! One streaming splitter for every JSON shape audit logs come in: a
//! CloudTrail file (`{"Records": [ {...}, ... ]}`), a bare array of events,
//! one event per line, concatenated or pretty-printed events. It hands out
//! each event's bytes with the place it starts, holds at most one event
//! (up to a limit) in memory, and recovers at the next line after a record
//! that cannot be right.

use std::io::BufRead;

/// Where a record starts: byte offset (of the decompressed input), line
/// and column (1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Bytes before it.
    pub offset: u64,
    /// Its line.
    pub line: u64,
    /// Its column (bytes).
    pub column: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} (byte {})", self.line, self.column, self.offset)
    }
}

/// What the splitter found.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One record's bytes (a JSON object).
    Record(&'a [u8], Position),
    /// A record longer than the limit, skipped: its start and length.
    TooLong(Position, u64),
    /// Something that is not a record, or a record cut short: where, and what.
    Broken(Position, String),
}

#[derive(Clone, Copy)]
struct Capture {
    /// The container depth inside the record.
    depth: u32,
    at: Position,
    bytes: u64,
    too_long: bool,
}

/// The splitter's state between reads.
struct State {
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Inside the top-level object, the next string is a key.
    expect_key: bool,
    /// Collecting the current top-level key.
    in_key: bool,
    key: Vec<u8>,
    /// The depth of the array whose objects are the records
    /// (`Records` of a CloudTrail file, or a bare top-level array).
    records_depth: Option<u32>,
    capture: Option<Capture>,
    /// The record's bytes from earlier chunks (a record inside one chunk
    /// is handed out from the chunk, never copied).
    buf: Vec<u8>,
    /// Where in the current chunk the record's bytes not yet in `buf`
    /// start.
    mark: Option<usize>,
    /// The index in the current chunk of the byte being looked at.
    cur: usize,
    /// Skipping to the end of the line after junk.
    skip_line: bool,
    pos: Position,
    limit: usize,
}

/// Split `input` into records, calling `each` for every piece; returns
/// the bytes read.
///
/// # Errors
/// I/O errors of `input` (a truncated gzip stream among them).
pub fn split<R: BufRead>(
    input: R,
    limit: usize,
    each: &mut dyn FnMut(Piece<'_>),
) -> std::io::Result<u64> {
    split_lines(input, limit, &mut |_, _| false, each)
}

/// [`split`], offering `take_line` first every line that may be one whole
/// record (one event per line, as EventBridge and CloudTrail Lake exports
/// write them): a line at the top level that starts with `{` and ends with
/// `}`, within the limit. When `take_line` takes it (it read the line as
/// one record), the splitter passes over the line without looking at its
/// bytes one by one; otherwise the line is split as any input is. The
/// caller that takes lines must take only what parses as one JSON object.
///
/// # Errors
/// As [`split`].
pub fn split_lines<R: BufRead>(
    mut input: R,
    limit: usize,
    take_line: &mut dyn FnMut(&[u8], Position) -> bool,
    each: &mut dyn FnMut(Piece<'_>),
) -> std::io::Result<u64> {
    let mut s = State {
        depth: 0,
        in_string: false,
        escape: false,
        expect_key: false,
        in_key: false,
        key: Vec::new(),
        records_depth: None,
        capture: None,
        buf: Vec::new(),
        mark: None,
        cur: 0,
        skip_line: false,
        pos: Position {
            offset: 0,
            line: 1,
            column: 1,
        },
        limit,
    };
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                s.end(each);
                return Err(e);
            }
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        s.feed(chunk, take_line, each);
        input.consume(n);
    }
    s.end(each);
    Ok(s.pos.offset)
}

impl State {
    /// Feed one chunk. The contents of strings (most of a record's bytes)
    /// are taken in runs up to the next quote, backslash or newline; the
    /// rest byte by byte.
    fn feed(
        &mut self,
        chunk: &[u8],
        take_line: &mut dyn FnMut(&[u8], Position) -> bool,
        each: &mut dyn FnMut(Piece<'_>),
    ) {
        let mut i = 0;
        while let Some(rest) = chunk.get(i..).filter(|r| !r.is_empty()) {
            if rest.first() == Some(&b'{')
                && self.depth == 0
                && self.capture.is_none()
                && !self.in_string
                && !self.skip_line
                && let Some(k) = memchr::memchr(b'\n', rest)
            {
                let line = rest.get(..k).unwrap_or_default();
                let end = line
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(0, |p| p + 1);
                let candidate = line.get(..end).unwrap_or_default();
                if candidate.last() == Some(&b'}')
                    && candidate.len() <= self.limit
                    && take_line(candidate, self.pos)
                {
                    // One line, its only newline at its end.
                    self.pos.offset += k as u64 + 1;
                    self.pos.line += 1;
                    self.pos.column = 1;
                    i += k + 1;
                    continue;
                }
            }
            if self.skip_line {
                let k = memchr::memchr(b'\n', rest).map_or(rest.len(), |k| k + 1);
                self.pass(&rest[..k]);
                if k <= rest.len() && rest.get(k - 1) == Some(&b'\n') {
                    self.skip_line = false;
                }
                i += k;
                continue;
            }
            if self.in_string && !self.escape {
                let k = memchr::memchr3(b'"', b'\\', b'\n', rest).unwrap_or(rest.len());
                if k > 0 {
                    self.take_run(&rest[..k]);
                    i += k;
                    continue;
                }
            }
            self.cur = i;
            self.byte(chunk, each);
            i += 1;
        }
        // A record going on into the next chunk: keep what this one had.
        match (self.capture, self.mark) {
            (Some(c), Some(m)) if !c.too_long => {
                self.buf
                    .extend_from_slice(chunk.get(m..).unwrap_or_default());
                self.mark = Some(0);
            }
            _ => self.mark = None,
        }
    }

    /// Skipped bytes: only the position moves.
    fn pass(&mut self, run: &[u8]) {
        self.pos.offset += run.len() as u64;
        let lines = memchr::memchr_iter(b'\n', run).count() as u64;
        if lines > 0 {
            self.pos.line += lines;
            let after = run.len() - 1 - memchr::memrchr(b'\n', run).unwrap_or(0);
            self.pos.column = after as u64 + 1;
        } else {
            self.pos.column += run.len() as u64;
        }
    }

    /// A run of string contents with no quote, backslash or newline.
    fn take_run(&mut self, run: &[u8]) {
        self.pos.offset += run.len() as u64;
        self.pos.column += run.len() as u64;
        if self.in_key {
            let room = 64usize.saturating_sub(self.key.len());
            self.key.extend_from_slice(&run[..run.len().min(room)]);
        }
        self.count(run.len());
    }

    /// `n` more bytes of the record being captured (they stay in the
    /// chunk until it ends or the chunk does); past the limit the record
    /// is too long and nothing of it is kept.
    fn count(&mut self, n: usize) {
        if let Some(c) = self.capture.as_mut() {
            c.bytes += n as u64;
            if !c.too_long && c.bytes > self.limit as u64 {
                c.too_long = true;
                self.buf = Vec::new();
                self.mark = None;
            }
        }
    }

    fn advance(&mut self, b: u8) {
        self.pos.offset += 1;
        if b == b'\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
    }

    /// Forget everything but the position: the next line starts afresh.
    fn reset(&mut self) {
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.expect_key = false;
        self.in_key = false;
        self.records_depth = None;
        self.capture = None;
        self.buf.clear();
        self.mark = None;
    }

    fn byte(&mut self, chunk: &[u8], each: &mut dyn FnMut(Piece<'_>)) {
        let b = chunk[self.cur];
        let at = self.pos;
        self.advance(b);
        if self.skip_line {
            if b == b'\n' {
                self.skip_line = false;
            }
            return;
        }
        if self.in_string {
            if b == b'\n' {
                // JSON strings hold no raw newline: the record was cut.
                let start = self.capture.map_or(at, |c| c.at);
                each(Piece::Broken(
                    start,
                    "a line ends inside a string (a record cut short?)".into(),
                ));
                self.reset();
                return;
            }
            self.count(1);
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                self.in_key = false;
            } else if self.in_key && self.key.len() < 64 {
                self.key.push(b);
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key {
                    self.in_key = true;
                    self.key.clear();
                }
                self.count(1);
            }
            b'{' | b'[' => {
                let opened = self.depth + 1;
                if self.capture.is_none() {
                    let record = b == b'{'
                        && (opened == 1 || self.records_depth.is_some_and(|r| opened == r + 1));
                    if record {
                        self.capture = Some(Capture {
                            depth: opened,
                            at,
                            bytes: 0,
                            too_long: false,
                        });
                        self.buf.clear();
                        self.mark = Some(self.cur);
                    } else if opened == 1 {
                        // A bare array: its objects are the records.
                        self.records_depth = Some(1);
                    } else if self.records_depth.is_some_and(|r| opened == r + 1) {
                        each(Piece::Broken(
                            at,
                            "an array where an event object was expected".into(),
                        ));
                    }
                } else if b == b'[' && self.depth == 1 && self.key == b"Records" {
                    // A CloudTrail file: the top-level object is a wrapper,
                    // the objects of its `Records` are the events.
                    self.capture = None;
                    self.buf.clear();
                    self.mark = None;
                    self.records_depth = Some(2);
                }
                self.depth = opened;
                if opened == 1 && b == b'{' {
                    self.expect_key = true;
                }
                self.count(1);
            }
            b'}' | b']' => {
                if self.depth == 0 {
                    each(Piece::Broken(at, format!("`{}` closes nothing", b as char)));
                    self.skip_line = true;
                    return;
                }
                self.count(1);
                if let Some(c) = self.capture
                    && c.depth == self.depth
                {
                    self.capture = None;
                    let end = self.cur + 1;
                    match (c.too_long, self.mark.take()) {
                        (true, _) => each(Piece::TooLong(c.at, c.bytes)),
                        // The whole record in this chunk: handed out in place.
                        (false, Some(m)) if self.buf.is_empty() => {
                            each(Piece::Record(chunk.get(m..end).unwrap_or_default(), c.at));
                        }
                        (false, m) => {
                            if let Some(m) = m {
                                self.buf
                                    .extend_from_slice(chunk.get(m..end).unwrap_or_default());
                            }
                            each(Piece::Record(&self.buf, c.at));
                        }
                    }
                    self.buf.clear();
                }
                if self.records_depth == Some(self.depth) {
                    self.records_depth = None;
                }
                self.depth -= 1;
                if self.depth == 0 {
                    self.expect_key = false;
                    self.key.clear();
                }
            }
            b',' => {
                if self.depth == 1 {
                    self.expect_key = true;
                }
                self.count(1);
            }
            b':' => {
                if self.depth == 1 {
                    self.expect_key = false;
                }
                self.count(1);
            }
            b' ' | b'\t' | b'\r' | b'\n' => self.count(1),
            _ => {
                if self.depth == 0 {
                    each(Piece::Broken(
                        at,
                        format!(
                            "expected a JSON event, found `{}`",
                            (b as char).escape_default()
                        ),
                    ));
                    self.skip_line = b != b'\n';
                } else if self.capture.is_none() && self.records_depth == Some(self.depth) {
                    each(Piece::Broken(
                        at,
                        "a value where an event object was expected".into(),
                    ));
                } else {
                    self.count(1);
                }
            }
        }
    }

    fn end(&mut self, each: &mut dyn FnMut(Piece<'_>)) {
        if let Some(c) = self.capture.take() {
            each(Piece::Broken(
                c.at,
                format!(
                    "the input ends inside a record ({} bytes of it read)",
                    c.bytes
                ),
            ));
        } else if self.depth > 0 {
            each(Piece::Broken(
                self.pos,
                "the input ends inside the document".into(),
            ));
        }
        self.reset();
    }
}
