//! IRC lines: the message format of RFC 1459/2812 with IRCv3 message tags, the framing of a
//! byte stream into lines with the protocol's size limits, and the helpers that build replies.

/// Most bytes of a line without its tags, CR LF included (RFC 1459 2.3).
pub(crate) const MAX_LINE: usize = 512;

/// Most bytes of a line's tag section, the leading `@` and the trailing space included
/// (IRCv3 message-tags).
pub(crate) const MAX_TAGS: usize = 8191;

/// A parsed line from a client. Tags are parsed for their size only: a client's tags are
/// not relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub command: String,
    pub params: Vec<String>,
}

/// What the framing found in the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed {
    Line(Line),
    /// An empty line: ignored, as RFC 2812 says.
    Empty,
    /// Over the limits: answered with 417 ERR_INPUTTOOLONG and dropped.
    TooLong,
    /// Not UTF-8: Switchboard's texts are UTF-8 (the UTF8ONLY token).
    NotUtf8,
}

/// Splits a byte stream into lines, enforcing the limits; an overlong line is skipped up to
/// its end and reported once.
#[derive(Default)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// Inside an overlong line: bytes are dropped until its end.
    skipping: bool,
}

impl Framer {
    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, if any.
    pub fn next(&mut self) -> Option<Framed> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_TAGS + MAX_LINE {
                    self.buf.clear();
                    if !self.skipping {
                        self.skipping = true;
                        return Some(Framed::TooLong);
                    }
                }
                return None;
            };
            let raw: Vec<u8> = self.buf.drain(..=end).collect();
            if std::mem::take(&mut self.skipping) {
                // The rest of a line already reported.
                continue;
            }
            return Some(frame(&raw));
        }
    }
}

fn frame(raw: &[u8]) -> Framed {
    // The tag section, when there is one, has its own budget.
    let (tags, rest) = if raw.first() == Some(&b'@') {
        match raw.iter().position(|&b| b == b' ') {
            Some(sp) => raw.split_at(sp + 1),
            None => (raw, &raw[raw.len()..]),
        }
    } else {
        (&raw[..0], raw)
    };
    if tags.len() > MAX_TAGS || rest.len() > MAX_LINE {
        return Framed::TooLong;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return Framed::NotUtf8;
    };
    match parse(text.trim_end_matches(['\r', '\n'])) {
        Some(line) => Framed::Line(line),
        None => Framed::Empty,
    }
}

/// Parses a line without its tags: `[:prefix] COMMAND params... [:trailing]`.
pub(crate) fn parse(text: &str) -> Option<Line> {
    let mut rest = text.trim_start_matches(' ');
    if let Some(p) = rest.strip_prefix(':') {
        // A client's prefix is ignored (RFC 2812 2.3).
        rest = p
            .split_once(' ')
            .map_or("", |(_, r)| r)
            .trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing.to_string());
            break;
        }
        let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(p.to_string());
        rest = r;
    }
    Some(Line {
        command: command.to_ascii_uppercase(),
        params,
    })
}

/// Escapes a tag value (IRCv3 message-tags).
pub(crate) fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Formats a line to send: tags (already escaped, `key=value`), prefix, command, params; the
/// last param is written as a trailing one. Ends with CR LF.
pub(crate) fn format(tags: &[String], prefix: &str, command: &str, params: &[&str]) -> String {
    let mut s = String::with_capacity(64);
    if !tags.is_empty() {
        s.push('@');
        s.push_str(&tags.join(";"));
        s.push(' ');
    }
    if !prefix.is_empty() {
        s.push(':');
        s.push_str(prefix);
        s.push(' ');
    }
    s.push_str(command);
    if let Some((last, middle)) = params.split_last() {
        for p in middle {
            s.push(' ');
            s.push_str(p);
        }
        s.push_str(" :");
        s.push_str(last);
    }
    s.push_str("\r\n");
    s
}

/// Splits a text into pieces of at most `max` bytes at character boundaries, preferring a
/// space near the end: a long native message becomes several IRC lines.
pub(crate) fn split_text(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(16);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(sp) = rest[..cut].rfind(' ').filter(|&sp| sp > max / 2) {
            cut = sp + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// An ISO 8601 UTC time with milliseconds, for the `time` tag (server-time).
pub(crate) fn iso_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Milliseconds since the epoch from an ISO 8601 UTC time as clients send in
/// `timestamp=` selectors (`2026-11-22T02:40:00.000Z`, the fraction optional).
pub(crate) fn parse_iso_time(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let ms: u64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefix_params_and_trailing() {
        let l = parse(":x PRIVMSG #a :hello  world ").unwrap();
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params, ["#a", "hello  world "]);
        assert_eq!(parse("nick  bob").unwrap().params, ["bob"]);
        assert_eq!(parse("TOPIC #a :").unwrap().params, ["#a", ""]);
        assert_eq!(parse("   "), None);
    }

    #[test]
    fn frames_lines_with_limits() {
        let mut f = Framer::default();
        f.push(b"NICK a\r\nUSER a 0 * :A\nPI");
        assert!(matches!(f.next(), Some(Framed::Line(l)) if l.command == "NICK"));
        assert!(matches!(f.next(), Some(Framed::Line(l)) if l.params == ["a", "0", "*", "A"]));
        assert_eq!(f.next(), None);
        f.push(b"NG x\r\n\r\n");
        assert!(matches!(f.next(), Some(Framed::Line(l)) if l.command == "PING"));
        assert_eq!(f.next(), Some(Framed::Empty));
        // 512 bytes with CR LF pass; 513 do not; tags have their own budget.
        let ok = format!("PRIVMSG #a :{}\r\n", "x".repeat(512 - 14));
        assert_eq!(ok.len(), 512);
        f.push(ok.as_bytes());
        assert!(matches!(f.next(), Some(Framed::Line(_))));
        f.push(format!("PRIVMSG #a :{}\r\n", "x".repeat(512 - 13)).as_bytes());
        assert_eq!(f.next(), Some(Framed::TooLong));
        f.push(format!("@+a={} PING x\r\n", "v".repeat(4000)).as_bytes());
        assert!(matches!(f.next(), Some(Framed::Line(_))));
        // A line that never ends is reported once and skipped to its end.
        f.push(&vec![b'y'; 10_000]);
        assert_eq!(f.next(), Some(Framed::TooLong));
        f.push(&vec![b'y'; 10_000]);
        assert_eq!(f.next(), None);
        f.push(b"yyy\r\nPING z\r\n");
        assert!(matches!(f.next(), Some(Framed::Line(l)) if l.params == ["z"]));
        f.push(b"PRIVMSG #a :\xff\r\n");
        assert_eq!(f.next(), Some(Framed::NotUtf8));
    }

    #[test]
    fn formats_and_splits() {
        assert_eq!(
            format(&["time=x".into()], "n!n@h", "PRIVMSG", &["#a", "hi there"]),
            "@time=x :n!n@h PRIVMSG #a :hi there\r\n"
        );
        assert_eq!(escape_tag("a b;c\\"), "a\\sb\\:c\\\\");
        let long = "word ".repeat(100);
        let parts = split_text(&long, 100);
        assert!(parts.iter().all(|p| p.len() <= 100));
        assert_eq!(parts.concat(), long);
        let wide = "é".repeat(100);
        assert!(split_text(&wide, 51).iter().all(|p| p.len() <= 51));
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_763_766_000_123), "2025-11-21T23:00:00.123Z");
        for ms in [0, 951_782_400_000, 1_763_766_000_123, 4_102_444_800_999] {
            assert_eq!(parse_iso_time(&iso_time(ms)), Some(ms));
        }
        assert_eq!(
            parse_iso_time("2025-11-21T23:00:00Z"),
            Some(1_763_766_000_000)
        );
        assert_eq!(parse_iso_time("yesterday"), None);
    }
}
