//! A line reader with a bound: a line longer than the bound is reported, skipped and never held
//! in memory, however long it gets.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What [`LineReader::next`] read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, without its `\n` (nor a `\r` before it).
    Complete(Vec<u8>),
    /// A line longer than the bound; the rest of it, up to its `\n`, is skipped unread.
    TooLong,
    /// The stream ended. An unterminated last line is dropped.
    Eof,
}

/// Reads `\n`-terminated lines of at most `max` bytes from `R`.
///
/// Cancel safe: every byte taken from the inner reader is either appended to the pending line or
/// skipped before the next await, so dropping a `next()` future loses nothing.
pub(crate) struct LineReader<R> {
    inner: R,
    max: usize,
    pending: Vec<u8>,
    discarding: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            pending: Vec::new(),
            discarding: false,
        }
    }

    /// The next line, or [`Line::TooLong`] once for each line over the bound.
    pub(crate) async fn next(&mut self) -> std::io::Result<Line> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                self.pending.clear();
                self.discarding = false;
                return Ok(Line::Eof);
            }
            let newline = memchr::memchr(b'\n', available);
            let chunk = &available[..newline.unwrap_or(available.len())];
            let consumed = newline.map_or(available.len(), |at| at + 1);
            let mut too_long = false;
            if !self.discarding {
                if self.pending.len() + chunk.len() > self.max {
                    too_long = true;
                    self.discarding = true;
                    self.pending = Vec::new();
                } else {
                    self.pending.extend_from_slice(chunk);
                }
            }
            self.inner.consume(consumed);
            if newline.is_some() {
                if std::mem::take(&mut self.discarding) {
                    if too_long {
                        return Ok(Line::TooLong);
                    }
                    continue;
                }
                let mut line = std::mem::take(&mut self.pending);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Complete(line));
            }
            if too_long {
                return Ok(Line::TooLong);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncWriteExt, BufReader};

    use super::*;

    async fn read_all(input: &[u8], max: usize, capacity: usize) -> Vec<Line> {
        let mut reader = LineReader::new(BufReader::with_capacity(capacity, input), max);
        let mut lines = Vec::new();
        loop {
            let line = reader.next().await.unwrap();
            let end = line == Line::Eof;
            lines.push(line);
            if end {
                return lines;
            }
        }
    }

    fn complete(text: &str) -> Line {
        Line::Complete(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn splits_lines_across_small_reads() {
        for capacity in [1, 2, 3, 64] {
            let lines = read_all(b"one\ntwo\r\n\nthree", 16, capacity).await;
            assert_eq!(
                lines,
                [complete("one"), complete("two"), complete(""), Line::Eof],
                "buffer capacity {capacity}"
            );
        }
    }

    #[tokio::test]
    async fn a_line_over_the_bound_is_reported_once_and_skipped() {
        for capacity in [1, 4, 1024] {
            let lines = read_all(b"short\nthis line is too long\nok\n", 8, capacity).await;
            assert_eq!(
                lines,
                [complete("short"), Line::TooLong, complete("ok"), Line::Eof],
                "buffer capacity {capacity}"
            );
        }
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_bound_is_kept() {
        let lines = read_all(b"12345678\n123456789\n", 8, 3).await;
        assert_eq!(lines, [complete("12345678"), Line::TooLong, Line::Eof]);
    }

    #[tokio::test]
    async fn an_endless_line_holds_at_most_the_bound() {
        let (mut writer, reader) = tokio::io::duplex(4096);
        let mut lines = LineReader::new(BufReader::with_capacity(1024, reader), 10_000);
        let feeder = tokio::spawn(async move {
            let block = vec![b'x'; 4096];
            for _ in 0..1024 {
                writer.write_all(&block).await.unwrap();
            }
            writer.write_all(b"\nafter\n").await.unwrap();
        });
        assert_eq!(lines.next().await.unwrap(), Line::TooLong);
        assert!(lines.pending.capacity() <= 10_000);
        assert_eq!(lines.next().await.unwrap(), complete("after"));
        feeder.await.unwrap();
    }

    #[tokio::test]
    async fn a_cancelled_read_loses_nothing() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut lines = LineReader::new(BufReader::new(reader), 64);
        writer.write_all(b"hal").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(20), lines.next()).await;
        assert!(waited.is_err(), "no line is complete yet");
        writer.write_all(b"f\n").await.unwrap();
        assert_eq!(lines.next().await.unwrap(), complete("half"));
    }
}
