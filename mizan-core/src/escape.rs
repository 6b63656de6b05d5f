//! Text-level JSON helpers: the short escapes that JSON and KDL v2 quoted strings share, and the
//! nesting check run before a body is parsed.

/// The two-character escape of `c` inside a JSON or KDL quoted string, if it has one.
pub(crate) fn short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{08}' => "\\b",
        '\u{0c}' => "\\f",
        _ => return None,
    })
}

/// Whether JSON `bytes` nest objects and arrays deeper than `max`, counted outside strings
/// before anything is parsed (the parser's own recursion limit is far higher).
pub(crate) fn json_nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    // Nesting deeper than `max` needs more than `max` opening brackets. Counting them is one
    // branch-free pass (vectorized), so the usual small body skips the state machine below.
    let opening = bytes
        .iter()
        .map(|&byte| usize::from(byte == b'{' || byte == b'['))
        .sum::<usize>();
    if opening <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}
