//! Findings about a module: where (section, offset, symbol) and what.

use std::fmt;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the module is still accepted.
    Note,
    /// Likely to misbehave on some kernels; the module is still accepted.
    Warning,
    /// The kernel would refuse the module or misapply a relocation.
    Error,
}

/// One finding, located as precisely as the rule allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error, warning or note.
    pub severity: Severity,
    /// The section concerned (a relocation section or a target section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Offset inside `section` (a relocation's `r_offset`, or an entry offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The symbol concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl Problem {
    /// An error without location.
    pub fn error(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            section: None,
            offset: None,
            symbol: None,
            message: message.into(),
        }
    }

    /// A warning without location.
    pub fn warning(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(message)
        }
    }

    /// A note without location.
    pub fn note(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Note,
            ..Problem::error(message)
        }
    }

    /// Attach a section.
    pub fn in_section(mut self, section: impl Into<String>) -> Self {
        self.section = Some(section.into());
        self
    }

    /// Attach an offset.
    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Attach a symbol.
    pub fn symbol(mut self, symbol: impl Into<String>) -> Self {
        self.symbol = Some(symbol.into());
        self
    }

    /// Is this an error?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `section S, offset 0xN, symbol 'X': message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = &self.section {
            parts.push(format!("section {s}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset 0x{o:x}"));
        }
        if let Some(s) = &self.symbol {
            parts.push(format!("symbol '{s}'"));
        }
        if parts.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.message)
        }
    }
}
