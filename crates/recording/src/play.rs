//! Terminal playback: a recording's output (`o`, and Custos's stderr `e`) written to a terminal with
//! its original timing, sped up by a factor, and long pauses cut short (an idle shell is not replayed
//! minute by minute). Input, resize and exit events are not shown: the output already contains the
//! echo of what was typed. The clock is a parameter ([`play_with`]) so timing is testable.
//!
//! A port-forward recording has no terminal: each `fi` / `fo` event is shown as a line naming the
//! connection and direction, then its (masked) bytes with control characters other than newline and
//! tab shown as `.`, so a binary protocol cannot drive the auditor's terminal.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::cast::{Lines, Parsed};
use crate::FormatError;

#[cfg(test)]
mod tests;

/// How to play.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayOptions {
    /// Speed factor: 2.0 plays twice as fast; `f64::INFINITY` writes everything at once.
    pub speed: f64,
    /// Longest pause kept between two outputs (before the speed factor applies).
    pub max_idle: Duration,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            speed: 1.0,
            max_idle: Duration::from_secs(2),
        }
    }
}

/// What a playback did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayStats {
    /// Events read.
    pub events: u64,
    /// Output events written.
    pub outputs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Time spent waiting (as asked of the clock).
    pub waited: Duration,
}

/// Why a playback stopped.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The speed is not a positive number.
    #[error("speed must be a positive number, not {0}")]
    Speed(f64),
    /// The recording could not be read, or the terminal written.
    #[error("{what} {path}: {source}")]
    Io {
        /// Reading or writing.
        what: &'static str,
        /// The recording.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The recording is not asciicast v2.
    #[error("{path}: {source}")]
    Format {
        /// The recording.
        path: String,
        /// What is wrong.
        #[source]
        source: FormatError,
    },
}

/// Plays the recording at `path` to `out` in real time at `speed`, pauses capped at 2 s.
pub fn play(path: &Path, speed: f64, out: &mut impl Write) -> Result<PlayStats, PlayError> {
    let options = PlayOptions {
        speed,
        ..PlayOptions::default()
    };
    play_with(path, &options, out, &mut std::thread::sleep)
}

/// Plays the recording at `path` to `out`, calling `sleep` for every pause (a fake clock in tests).
pub fn play_with(
    path: &Path,
    options: &PlayOptions,
    out: &mut impl Write,
    sleep: &mut dyn FnMut(Duration),
) -> Result<PlayStats, PlayError> {
    if options.speed.is_nan() || options.speed <= 0.0 {
        return Err(PlayError::Speed(options.speed));
    }
    let shown = path.display().to_string();
    let io = |what, source| PlayError::Io {
        what,
        path: shown.clone(),
        source,
    };
    let parsed = |e: Parsed| match e {
        Parsed::Io(source) => io("reading", source),
        Parsed::Format(source) => PlayError::Format {
            path: shown.clone(),
            source,
        },
    };
    let file = std::fs::File::open(path).map_err(|e| io("opening", e))?;
    let mut lines = Lines::new(std::io::BufReader::new(file)).map_err(parsed)?;
    let mut stats = PlayStats::default();
    let mut last = Duration::ZERO;
    while let Some(e) = lines.next_event().map_err(parsed)? {
        stats.events += 1;
        let shown = match (e.code.is_output(), e.forwarded_bytes()) {
            (true, _) => e.data,
            (false, Some((conn, bytes))) => forwarded(&e.code, conn, &bytes),
            (false, None) => continue,
        };
        let pause = e.time.saturating_sub(last).min(options.max_idle);
        last = e.time.max(last);
        let pause = Duration::try_from_secs_f64(pause.as_secs_f64() / options.speed)
            .unwrap_or(Duration::ZERO);
        if !pause.is_zero() {
            sleep(pause);
            stats.waited += pause;
        }
        out.write_all(shown.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| io("writing the terminal for", e))?;
        stats.outputs += 1;
        stats.bytes += shown.len() as u64;
    }
    Ok(stats)
}

/// A port-forward event as text: a heading line, then the bytes with control characters (but
/// newline and tab) and invalid UTF-8 shown as `.`.
fn forwarded(code: &crate::Code, conn: u32, bytes: &[u8]) -> String {
    let arrow = if *code == crate::Code::ToPod {
        "-> pod"
    } else {
        "<- pod"
    };
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            '\u{fffd}' => '.',
            c if c.is_control() => '.',
            c => c,
        })
        .collect();
    let text = text.replace('\n', "\r\n");
    format!(
        "\r\n[connection {conn} {arrow}, {} bytes]\r\n{text}",
        bytes.len()
    )
}
