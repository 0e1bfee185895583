//! What a run records about how it ran, each a closed set of stored names: the read side gets
//! these back typed, so no report compares stored text.

/// How a session serves parallel sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// One forward pass for every sequence of a step.
    Batched,
    /// One forward pass per sequence, in turn.
    RoundRobin,
    /// Whatever the server does (the HTTP engine).
    Server,
}

impl Scheduling {
    /// The stored name (`runs.scheduling`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batched => "batched",
            Self::RoundRobin => "round-robin",
            Self::Server => "server",
        }
    }
}

crate::named_enum!(Scheduling, "scheduling", [Batched, RoundRobin, Server]);

/// Where a hybrid run's request was answered (`requests.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    OnDevice,
    Cloud,
    /// Neither could answer: the cloud's error is recorded.
    Unanswered,
}

impl AnswerSource {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnDevice => "on_device",
            Self::Cloud => "cloud",
            Self::Unanswered => "unanswered",
        }
    }
}

crate::named_enum!(AnswerSource, "answer source", [OnDevice, Cloud, Unanswered]);

/// How a stored request ended (`requests.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Completed,
    /// Turned away by the scheduler (`queue_full`, `admission_timeout`).
    Rejected(crate::schedule::Rejection),
    /// The client gave up.
    Cancelled,
    /// Nothing answered (a hybrid request neither the device nor the cloud served).
    Failed,
}

impl RequestStatus {
    pub const ALL: &'static [Self] = &[
        Self::Completed,
        Self::Rejected(crate::schedule::Rejection::QueueFull),
        Self::Rejected(crate::schedule::Rejection::AdmissionTimeout),
        Self::Cancelled,
        Self::Failed,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Rejected(r) => r.as_str(),
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RequestStatus {
    type Err = crate::names::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| crate::names::UnknownName {
                what: "request status",
                name: s.to_owned(),
                known: Self::ALL.iter().map(|v| v.as_str()).collect(),
            })
    }
}

/// The output integrity verdict of a run (`runs.integrity`'s `verdict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrityVerdict {
    Pass,
    /// What failed, in one line.
    Fail(String),
}

impl IntegrityVerdict {
    /// `pass` is a pass; any other stored line says what failed.
    #[must_use]
    pub fn from_stored(line: &str) -> Self {
        if line == "pass" {
            Self::Pass
        } else {
            Self::Fail(line.strip_prefix("fail: ").unwrap_or(line).to_owned())
        }
    }

    #[must_use]
    pub fn passed(&self) -> bool {
        *self == Self::Pass
    }
}

impl std::fmt::Display for IntegrityVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pass => f.write_str("pass"),
            Self::Fail(why) => write!(f, "fail: {why}"),
        }
    }
}

/// Which tool produced a run (`runs.origin`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunOrigin {
    /// Measured by edgebench itself.
    Edgebench,
    /// Brought in from another tool's output (`imported:<tool>`).
    Imported { tool: String },
}

impl RunOrigin {
    /// The stored name of llama-bench imports.
    #[must_use]
    pub fn llama_bench() -> Self {
        Self::Imported {
            tool: "llama-bench".to_owned(),
        }
    }

    #[must_use]
    pub fn is_imported(&self) -> bool {
        matches!(self, Self::Imported { .. })
    }
}

impl std::fmt::Display for RunOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edgebench => f.write_str("edgebench"),
            Self::Imported { tool } => write!(f, "imported:{tool}"),
        }
    }
}

impl std::str::FromStr for RunOrigin {
    type Err = crate::names::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("imported:") {
            _ if s == "edgebench" => Ok(Self::Edgebench),
            Some(tool) if !tool.is_empty() => Ok(Self::Imported {
                tool: tool.to_owned(),
            }),
            _ => Err(crate::names::UnknownName {
                what: "run origin",
                name: s.to_owned(),
                known: vec!["edgebench", "imported:<tool>"],
            }),
        }
    }
}

/// How a run's energy was obtained (`runs.energy_source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnergySource {
    /// Read from the CPU's RAPL counters.
    Rapl,
    /// Estimated, not measured: the stored line says from what.
    Estimate { basis: String },
}

impl EnergySource {
    /// `rapl`, else an estimate whose stored line (`estimate: …`) is its basis.
    #[must_use]
    pub fn from_stored(line: &str) -> Self {
        if line == "rapl" {
            Self::Rapl
        } else {
            Self::Estimate {
                basis: line.strip_prefix("estimate: ").unwrap_or(line).to_owned(),
            }
        }
    }
}

impl std::fmt::Display for EnergySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rapl => f.write_str("rapl"),
            Self::Estimate { basis } => write!(f, "estimate: {basis}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back_as_what_was_written() {
        for s in Scheduling::ALL {
            assert_eq!(s.to_string().parse::<Scheduling>(), Ok(*s));
        }
        assert!("parallel".parse::<Scheduling>().is_err());
        for s in RequestStatus::ALL {
            assert_eq!(s.to_string().parse::<RequestStatus>(), Ok(*s));
        }
        for s in AnswerSource::ALL {
            assert_eq!(s.to_string().parse::<AnswerSource>(), Ok(*s));
        }
        for o in [RunOrigin::Edgebench, RunOrigin::llama_bench()] {
            assert_eq!(o.to_string().parse::<RunOrigin>(), Ok(o));
        }
        assert!("imported:".parse::<RunOrigin>().is_err());
        assert!("llama-bench".parse::<RunOrigin>().is_err());
        let fail = IntegrityVerdict::Fail("3 of 6 turns did not generate 16 tokens".into());
        assert_eq!(IntegrityVerdict::from_stored(&fail.to_string()), fail);
        assert_eq!(
            IntegrityVerdict::from_stored("pass"),
            IntegrityVerdict::Pass
        );
        let estimate = EnergySource::Estimate {
            basis: "cpu_time_s × 15 W".into(),
        };
        assert_eq!(EnergySource::from_stored(&estimate.to_string()), estimate);
        assert_eq!(EnergySource::from_stored("rapl"), EnergySource::Rapl);
    }
}
