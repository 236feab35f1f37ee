//! The sans-IO frame parser: push bytes in any chunking, pull [`Event`]s.
//!
//! Owns the STOMP grammar (F1–F10, F13, F14) and the size limits (S6). It does
//! no I/O, holds no clock and knows nothing of sessions: the caller tells it the
//! negotiated version after CONNECT/CONNECTED ([`Parser::set_version`]).
//!
//! The parser is resumable: it remembers how far it has scanned the frame in
//! progress (which phase, which line, which headers so far), so each byte is
//! looked at once however the input is chunked, and a 4 MiB frame fed one byte at
//! a time costs time linear in its size. Limits are checked as bytes arrive, so an
//! over-long line or an oversized `content-length` is refused before the rest of
//! it is buffered.
//!
//! Frames come out zero-copy: a frame is one `Bytes` split off the input buffer
//! (one reference count per frame), its headers and its body ranges of it (a
//! handful of headers kept inside the [`Frame`], so a usual frame costs no
//! allocation at all). Escape sequences are decoded in place, in the buffer,
//! since decoded text is never longer.

use crate::error::ParseError;
use crate::specials;
use bytes::{Buf, BytesMut};
use std::ops::Range;
use stompkit_escape::{Escaping, unescape_in_place};
use stompkit_frame::{Command, Frame, RawHeaders, RawHeadersError, Version, names};

/// How far ahead one search for a bare CR looks (header blocks are short).
const CR_WINDOW: usize = 2048;

/// No `:` (or no backslash) seen yet on the current header line.
const NONE: usize = usize::MAX;

/// Limits and leniency of a [`Parser`]. The defaults are safe for a server on the
/// internet and at least as generous as established brokers (RabbitMQ: 4 MiB
/// frames; ActiveMQ: 1000 headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParserConfig {
    /// Longest command line, in bytes (default 1 KiB).
    pub max_command_len: usize,
    /// Longest header line, in bytes, EOL excluded (default 64 KiB).
    pub max_header_line: usize,
    /// Most headers in one frame (default 1000).
    pub max_headers: usize,
    /// Most bytes of command line and headers together (default 256 KiB).
    pub max_header_bytes: usize,
    /// Largest body, in bytes (default 4 MiB).
    pub max_body: usize,
    /// Trim spaces and tabs around header names and values, as 1.0 servers did.
    /// Off by default: 1.1+ forbids trimming (F14).
    pub trim_headers: bool,
}

impl Default for ParserConfig {
    fn default() -> ParserConfig {
        ParserConfig {
            max_command_len: 1024,
            max_header_line: 64 * 1024,
            max_headers: 1000,
            max_header_bytes: 256 * 1024,
            max_body: 4 * 1024 * 1024,
            trim_headers: false,
        }
    }
}

/// What the parser produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete frame.
    Frame(Frame),
    /// One bare EOL between frames: a heart-beat (H4), or an EOL after a NUL (F2).
    HeartBeat,
}

/// Where in a frame the scan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between frames: EOLs are heart-beats, anything else starts a frame.
    Idle,
    /// Reading the command line.
    Command,
    /// Reading header lines; `line` is where the current one starts.
    Headers { line: usize },
    /// Reading the body, which starts at `start`.
    Body { start: usize },
}

/// The resumable state of the frame being read, independent of who owns the bytes.
#[derive(Debug)]
struct Scan {
    config: ParserConfig,
    /// A header line ending at or before this offset is within both line limits
    /// (`max_header_line`, `max_header_bytes`), so most lines need one comparison.
    within_limits: usize,
    version: Option<Version>,
    failed: Option<ParseError>,
    phase: Phase,
    /// Everything before `pos` in the buffer has been scanned.
    pos: usize,
    command: Command,
    escaping: Escaping,
    headers: RawHeaders,
    content_length: Option<usize>,
    /// Offset of the current header line's first `:`, or [`NONE`].
    colon: usize,
    /// Offset of the current header line's first backslash (so it needs
    /// unescaping), or [`NONE`].
    backslash: usize,
    /// Whether the frame being read is strict about CR (a 1.2 session, F1); fixed
    /// when the frame starts, like its escaping.
    strict: bool,
    /// No bare CR can be before this offset, so lines ending before it need no CR
    /// search: in strict mode one bounded search serves many lines; otherwise it is
    /// `usize::MAX` (nothing to search for).
    cr_free_until: usize,
    /// The smaller of `within_limits` and `cr_free_until`: a header line ending
    /// at or before it needs neither check, so most lines need one comparison.
    checked_until: usize,
}

/// A resumable, zero-copy STOMP parser.
///
/// Two ways to feed it: [`push`](Parser::push) bytes and pull with
/// [`next_event`](Parser::next_event) (the parser owns the buffer), or
/// [`parse`](Parser::parse) straight out of a caller's `BytesMut` (what a
/// `tokio_util` decoder does).
///
/// ```
/// use stompkit_frame::{Command, Version};
/// use stompkit_wire::{Event, Parser};
///
/// let mut parser = Parser::new();
/// parser.push(b"CONNECT\naccept-version:1.2\nhost:a\n\n\0");
/// let Some(Event::Frame(connect)) = parser.next_event()? else { panic!() };
/// assert_eq!(connect.command, Command::Connect);
/// parser.set_version(Version::V1_2);
///
/// parser.push(b"\nSEND\ndestination:/queue/a\nx:a\\cb\n\nhel"); // a heart-beat, half a frame
/// assert_eq!(parser.next_event()?, Some(Event::HeartBeat));
/// assert_eq!(parser.next_event()?, None); // incomplete is not an error
/// parser.push(b"lo\0");
/// let Some(Event::Frame(send)) = parser.next_event()? else { panic!() };
/// assert_eq!(send.get("x"), Some("a:b"));
/// assert_eq!(send.body(), b"hello");
/// # Ok::<(), stompkit_wire::ParseError>(())
/// ```
#[derive(Debug)]
pub struct Parser {
    scan: Scan,
    buf: BytesMut,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::new()
    }
}

impl Parser {
    /// A parser with default limits, before version negotiation.
    pub fn new() -> Parser {
        Parser::with_config(ParserConfig::default())
    }

    /// A parser with the given limits, before version negotiation.
    pub fn with_config(config: ParserConfig) -> Parser {
        let within_limits = config.max_header_line.min(config.max_header_bytes);
        Parser {
            scan: Scan {
                within_limits,
                config,
                version: None,
                failed: None,
                phase: Phase::Idle,
                pos: 0,
                command: Command::Send,
                escaping: Escaping::None,
                headers: RawHeaders::new(),
                content_length: None,
                colon: NONE,
                backslash: NONE,
                strict: false,
                cr_free_until: usize::MAX,
                checked_until: within_limits,
            },
            buf: BytesMut::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ParserConfig {
        &self.scan.config
    }

    /// The negotiated version, `None` until [`set_version`](Parser::set_version).
    pub fn version(&self) -> Option<Version> {
        self.scan.version
    }

    /// Tells the parser the negotiated version. Before this, the parser reads CR LF
    /// as a line end and unescapes nothing (CONNECT/CONNECTED are never escaped, E1);
    /// afterwards it applies that version's escaping, and in 1.2 a CR not followed
    /// by LF is an error (F1). Applies from the next frame on.
    pub fn set_version(&mut self, version: Version) {
        self.scan.version = Some(version);
    }

    /// Whether a frame has started and not yet finished (for a frame-completion
    /// timeout: a slow-drip sender must not hold a connection forever).
    pub fn in_frame(&self) -> bool {
        self.scan.phase != Phase::Idle
    }

    /// Bytes pushed and not yet returned as events.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes to the parser's own buffer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next event from pushed bytes: `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, ParseError> {
        let event = self.scan.parse(&mut self.buf);
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            // Give a large buffer back once it drained, so idle parsers stay small.
            self.buf = BytesMut::new();
        }
        event
    }

    /// The next event from the caller's buffer, removing its bytes from the front.
    /// `Ok(None)` means more bytes are needed. Between calls the caller may only
    /// append to `buf`; the parser remembers how far it has scanned. Escaped
    /// header text of the frame in progress is decoded in place, so the bytes
    /// before the end of the last complete header line are no longer the bytes
    /// received (they belong to the parser until the frame comes out).
    #[inline]
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, ParseError> {
        self.scan.parse(buf)
    }
}

impl Scan {
    #[inline]
    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if buf.len() < self.pos {
            // The caller discarded bytes we had scanned: start over.
            self.reset();
        }
        self.step(buf).inspect_err(|&e| self.failed = Some(e))
    }

    fn reset(&mut self) {
        self.phase = Phase::Idle;
        self.pos = 0;
        self.content_length = None;
        self.set_cr_free_until(if self.strict { 0 } else { usize::MAX });
        self.colon = NONE;
        self.backslash = NONE;
        self.headers = RawHeaders::new();
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, ParseError> {
        loop {
            match self.phase {
                Phase::Idle => match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        self.consumed(buf, 1);
                        return Ok(Some(Event::HeartBeat));
                    }
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(None),
                        Some(b'\n') => {
                            self.consumed(buf, 2);
                            return Ok(Some(Event::HeartBeat));
                        }
                        Some(_) => return Err(ParseError::BareCr),
                    },
                    Some(_) => {
                        self.phase = Phase::Command;
                        self.pos = 0;
                        let strict = self.version == Some(Version::V1_2);
                        if strict != self.strict {
                            self.strict = strict;
                            self.set_cr_free_until(if strict { 0 } else { usize::MAX });
                        }
                    }
                },
                Phase::Command => {
                    let Some(lf) = specials::find_lf(buf, self.pos) else {
                        self.pos = buf.len();
                        // A trailing CR may be the start of the EOL: it does not count yet.
                        if strip_cr(buf).len() > self.config.max_command_len {
                            return Err(ParseError::CommandTooLong);
                        }
                        return Ok(None);
                    };
                    let line = strip_cr(&buf[..lf]);
                    if line.len() > self.config.max_command_len {
                        return Err(ParseError::CommandTooLong);
                    }
                    self.command = match Command::from_bytes(line) {
                        Some(c) => c,
                        None if self.strict && line.contains(&b'\r') => {
                            return Err(ParseError::BareCr);
                        }
                        None => return Err(ParseError::UnknownCommand),
                    };
                    self.escaping = Escaping::for_frame(self.version, self.command);
                    self.pos = lf + 1;
                    self.phase = Phase::Headers { line: lf + 1 };
                }
                Phase::Headers { line } => match self.scan_headers(buf, line)? {
                    Some(start) => {
                        self.pos = start;
                        self.phase = Phase::Body { start };
                    }
                    None => return Ok(None),
                },
                Phase::Body { start } => {
                    let Some(end) = self.body_end(buf, start)? else {
                        return Ok(None);
                    };
                    if end > start && !self.command.allows_body() {
                        return Err(ParseError::BodyNotAllowed);
                    }
                    return self.finish(buf, start, end);
                }
            }
        }
    }

    /// Where the body that starts at `start` ends (its NUL), or `None` (state
    /// saved) when the buffered bytes end first: `content-length` octets then a
    /// NUL (F8), or the first NUL (F10), within `max_body` either way.
    #[inline(always)]
    fn body_end(&mut self, buf: &BytesMut, start: usize) -> Result<Option<usize>, ParseError> {
        if let Some(len) = self.content_length {
            let nul = start + len;
            return match buf.get(nul) {
                None => Ok(None),
                Some(0) => Ok(Some(nul)),
                Some(_) => Err(ParseError::MissingNul),
            };
        }
        match memchr::memchr(0, &buf[self.pos..]) {
            // The limit holds whether or not the NUL came in the same chunk.
            Some(i) if self.pos + i - start > self.config.max_body => Err(ParseError::BodyTooLarge),
            Some(i) => Ok(Some(self.pos + i)),
            None => {
                self.pos = buf.len();
                if buf.len() - start > self.config.max_body {
                    return Err(ParseError::BodyTooLarge);
                }
                Ok(None)
            }
        }
    }

    /// Scans header lines from `self.pos` on, the current one starting at `line`.
    /// Returns where the body starts once the blank line (F3) has been read, or
    /// `None` (state saved) when the buffered bytes end first.
    ///
    /// One pass, 16 bytes at a time (see [`specials`]), finds each line's end, its
    /// first `:` and its first `\` (which marks it for unescaping).
    #[inline]
    fn scan_headers(
        &mut self,
        buf: &mut BytesMut,
        mut line: usize,
    ) -> Result<Option<usize>, ParseError> {
        let (mut colon, mut backslash) = (self.colon, self.backslash);
        let hay: &mut [u8] = buf;
        let len = hay.len();
        let mut at = self.pos;
        while at < len {
            let mut mask = specials::block_mask_at(hay, at);
            while mask != 0 {
                let i = at + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                match hay[i] {
                    b':' => colon = colon.min(i),
                    b'\\' => backslash = backslash.min(i),
                    _ => {
                        let end = if i > line && hay[i - 1] == b'\r' {
                            i - 1
                        } else {
                            i
                        };
                        if end == line {
                            (self.colon, self.backslash) = (NONE, NONE);
                            return Ok(Some(i + 1));
                        }
                        if end > self.checked_until {
                            self.check_line(hay, line, end)?;
                        }
                        self.header(hay, line, end, colon, backslash)?;
                        (line, colon, backslash) = (i + 1, NONE, NONE);
                    }
                }
            }
            at += specials::BLOCK;
        }
        (self.pos, self.colon, self.backslash) = (buf.len(), colon, backslash);
        self.phase = Phase::Headers { line };
        // A trailing CR may be the start of the EOL: it does not count yet.
        let end = line.max(strip_cr(buf).len());
        self.check_partial_line(line, end).map(|()| None)
    }

    /// Sets `cr_free_until`, and `checked_until` with it.
    #[inline]
    fn set_cr_free_until(&mut self, offset: usize) {
        self.cr_free_until = offset;
        self.checked_until = offset.min(self.within_limits);
    }

    /// The checks a complete header line `buf[line..end]` ending past
    /// `checked_until` needs: the line limits, and in strict mode no bare CR.
    #[inline(never)]
    fn check_line(&mut self, buf: &[u8], line: usize, end: usize) -> Result<(), ParseError> {
        if end > self.within_limits {
            self.check_partial_line(line, end)?;
        }
        if end > self.cr_free_until {
            self.find_bare_cr(buf, line, end)?;
        }
        Ok(())
    }

    /// Removes `n` bytes from the front of `buf`; offsets learnt about later bytes stay valid.
    #[inline]
    fn consumed(&mut self, buf: &mut BytesMut, n: usize) {
        self.set_cr_free_until(self.cr_free_until.saturating_sub(n));
        buf.advance(n);
    }

    /// Limits on a header line that has not ended yet (or just ended at `end`).
    ///
    /// When the line is over both limits, the one it crossed first (in byte order)
    /// is reported, so the error does not depend on how the input was chunked. An
    /// empty line (so far, or the blank line ending the headers, F3) is over none.
    #[inline]
    fn check_partial_line(&self, line: usize, end: usize) -> Result<(), ParseError> {
        if end == line {
            return Ok(());
        }
        // The last allowed end of the line under each limit.
        let line_limit = line.saturating_add(self.config.max_header_line);
        let bytes_limit = self.config.max_header_bytes.max(line);
        match (end > line_limit, end > bytes_limit) {
            (false, false) => Ok(()),
            (true, false) => Err(ParseError::HeaderTooLong),
            (false, true) => Err(ParseError::HeadersTooLarge),
            (true, true) if line_limit <= bytes_limit => Err(ParseError::HeaderTooLong),
            (true, true) => Err(ParseError::HeadersTooLarge),
        }
    }

    /// One complete header line, `buf[start..end]` (EOL removed), whose first colon
    /// and first backslash (each [`NONE`] if absent) were found by the scan.
    #[inline(always)]
    fn header(
        &mut self,
        buf: &mut [u8],
        start: usize,
        end: usize,
        colon: usize,
        backslash: usize,
    ) -> Result<(), ParseError> {
        // The first colon separates name and value (F6): it must be there, after a
        // name (an empty name stays empty when trimmed or unescaped).
        if colon >= end || colon == start {
            return Err(ParseError::InvalidHeader);
        }
        if backslash != NONE || self.config.trim_headers {
            return self.unusual_header(buf, start..colon, colon + 1..end, backslash);
        }
        if colon - start == names::CONTENT_LENGTH.len()
            && self.content_length.is_none()
            && &buf[start..colon] == names::CONTENT_LENGTH.as_bytes()
        {
            self.content_length(&buf[colon + 1..end])?;
        }
        self.record(start, colon, end)
    }

    /// Records the header on the line `start..end` (colon at `colon`), within
    /// `max_headers`.
    #[inline(always)]
    fn record(&mut self, start: usize, colon: usize, end: usize) -> Result<(), ParseError> {
        let recorded = self
            .headers
            .push_line(start, colon, end)
            .map_err(utf8_error)?;
        if recorded > self.config.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        Ok(())
    }

    /// In strict mode, a CR in `buf[start..end]` is a bare CR (F1). Searches from
    /// this line on, past its end, so one search serves the following lines too.
    #[inline(never)]
    fn find_bare_cr(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), ParseError> {
        let limit = buf.len().min(start + CR_WINDOW).max(end);
        match memchr::memchr(b'\r', &buf[start..limit]) {
            Some(i) if start + i < end => return Err(ParseError::BareCr),
            Some(i) => self.set_cr_free_until(start + i),
            None => self.set_cr_free_until(limit),
        }
        Ok(())
    }

    /// The slow path of [`header`](Scan::header): trimming (a lenient option) or
    /// escape sequences.
    #[cold]
    fn unusual_header(
        &mut self,
        buf: &mut [u8],
        mut name: Range<usize>,
        mut value: Range<usize>,
        backslash: usize,
    ) -> Result<(), ParseError> {
        if self.config.trim_headers {
            name = trim(buf, name);
            value = trim(buf, value);
        }
        if name.is_empty() {
            return Err(ParseError::InvalidHeader);
        }
        if backslash != NONE && self.escaping != Escaping::None {
            return self.escaped_header(buf, name, value, backslash);
        }
        if self.content_length.is_none() && &buf[name.clone()] == names::CONTENT_LENGTH.as_bytes() {
            self.content_length(&buf[value.clone()])?;
        }
        self.push_joined(buf, name, value)
    }

    /// Records a header whose name and value no longer sit as `name:value` (after
    /// trimming or decoding), moving the value down to right after the name and a
    /// colon so that it does again, and can be kept packed.
    fn push_joined(
        &mut self,
        buf: &mut [u8],
        name: Range<usize>,
        value: Range<usize>,
    ) -> Result<(), ParseError> {
        let colon = name.end;
        if value.start != colon + 1 {
            buf[colon] = b':';
            buf.copy_within(value.clone(), colon + 1);
        }
        self.record(name.start, colon, colon + 1 + value.len())
    }

    /// A line with escape sequences, the first at `backslash`, decoded where it
    /// stands (decoded text is never longer), so the frame's headers still need no
    /// allocation.
    fn escaped_header(
        &mut self,
        buf: &mut [u8],
        name: Range<usize>,
        value: Range<usize>,
        backslash: usize,
    ) -> Result<(), ParseError> {
        let (name, value) = if backslash < name.end {
            let name = self.unescape(buf, name, backslash)?;
            let from = value.start;
            (name, self.unescape(buf, value, from)?)
        } else {
            ((name, false), self.unescape(buf, value, backslash)?)
        };
        if self.content_length.is_none() && &buf[name.0.clone()] == names::CONTENT_LENGTH.as_bytes()
        {
            self.content_length(&buf[value.0.clone()])?;
        }
        // Decoded text is new text: check it is UTF-8 now (F5), as a copy would be.
        for (range, decoded) in [&name, &value] {
            let text = &buf[range.clone()];
            if *decoded && !text.is_ascii() && std::str::from_utf8(text).is_err() {
                return Err(ParseError::InvalidUtf8);
            }
        }
        self.push_joined(buf, name.0, value.0)
    }

    /// Decodes `buf[range]` in place, knowing that nothing before `from` needs it:
    /// the decoded range, and whether anything was decoded.
    #[inline]
    fn unescape(
        &self,
        buf: &mut [u8],
        range: Range<usize>,
        from: usize,
    ) -> Result<(Range<usize>, bool), ParseError> {
        let len = unescape_in_place(&mut buf[from..range.end], self.escaping)
            .map_err(ParseError::InvalidEscape)?;
        Ok((range.start..from + len, from + len < range.end))
    }

    /// The first `content-length` of a frame (F8, F13): strict, and within `max_body`.
    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        let len = stompkit_frame::parse_content_length(value)
            .map_err(|_| ParseError::BadContentLength)?;
        // No buffer holds more than isize::MAX bytes, so a longer body can never
        // arrive; refusing it keeps `start + len` from overflowing when max_body is usize::MAX.
        if len > self.config.max_body as u64 || len > isize::MAX as u64 {
            return Err(ParseError::BodyTooLarge);
        }
        self.content_length = Some(len as usize);
        Ok(())
    }

    /// Splits the finished frame `buf[..=nul]` off and builds it: the header block
    /// `buf[..start]` backs the headers, `buf[start..nul]` is the body.
    #[inline]
    fn finish(
        &mut self,
        buf: &mut BytesMut,
        start: usize,
        nul: usize,
    ) -> Result<Option<Event>, ParseError> {
        self.set_cr_free_until(self.cr_free_until.saturating_sub(nul + 1));
        self.phase = Phase::Idle;
        self.pos = 0;
        self.content_length = None;
        let frame = self
            .headers
            .split_frame(buf, self.command, start, nul, nul + 1)
            .map_err(utf8_error)?;
        Ok(Some(Event::Frame(frame)))
    }
}

fn utf8_error(e: RawHeadersError) -> ParseError {
    match e {
        RawHeadersError::InvalidUtf8 => ParseError::InvalidUtf8,
        RawHeadersError::OutOfBounds => ParseError::HeadersTooLarge,
    }
}

#[inline]
fn strip_cr(line: &[u8]) -> &[u8] {
    match line {
        [rest @ .., b'\r'] => rest,
        _ => line,
    }
}

fn trim(frame: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && matches!(frame[r.start], b' ' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(frame[r.end - 1], b' ' | b'\t') {
        r.end -= 1;
    }
    r
}
