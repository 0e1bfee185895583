//! The report's editable inputs: published claims (`datasets/claims.toml`) and ROI assumptions
//! (`datasets/roi.toml`). Serialized formats, versioned, unknown keys refused.

use serde::Deserialize;

use crate::ReportError;

/// The only `format` this build reads for both files.
pub const INPUT_FORMAT: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    pub format: u32,
    #[serde(default)]
    pub source: Vec<SourceFile>,
    #[serde(default)]
    pub claim: Vec<ClaimFile>,
    /// Groups of device profiles whose decode efficiency is fitted together.
    #[serde(default)]
    pub device_class: Vec<DeviceClassFile>,
    /// Published llama.cpp measurements of real models on real devices: what phone
    /// projections are fitted on and checked against.
    #[serde(default)]
    pub measurement: Vec<PublishedMeasurementFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceClassFile {
    pub id: String,
    pub label: String,
    /// Device profiles (`edgebench_core::device_profile`) projected with this class's fit.
    pub profiles: Vec<String>,
}

/// One published measurement: a real model file decoded by llama.cpp on a real device. Ranges
/// are `[low, high]` (equal when the source gives one figure).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedMeasurementFile {
    pub id: String,
    pub source: String,
    #[serde(rename = "where")]
    pub location: String,
    pub device_class: String,
    /// The device(s) measured, in words.
    pub device: String,
    /// The model family as models.toml names the real model (`phi-4-mini`), or another name.
    pub model: String,
    pub quant: String,
    /// The file's size: the bytes read per decoded token.
    pub weights_gb: f64,
    /// The measured devices' peak DRAM bandwidth (vendor specifications).
    pub bandwidth_gb_s: [f64; 2],
    pub generation_tokens_per_s: [f64; 2],
    #[serde(default)]
    pub prefill_tokens_per_s: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    pub id: String,
    pub title: String,
    #[serde(rename = "where")]
    pub location: String,
}

/// What a claim states. Each kind needs its own keys (checked in [`parse_claims`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    DecodeRate,
    Footprint,
    MinMemory,
    ContextWindow,
    ModelSize,
    KvSaving,
    Accuracy,
    TurnLatency,
    DeviceCost,
    QuantizationSupport,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimFile {
    pub id: String,
    pub source: String,
    #[serde(rename = "where")]
    pub location: String,
    pub kind: ClaimKind,
    pub model: Option<String>,
    pub device: Option<String>,
    pub tokens_per_s: Option<[f64; 2]>,
    pub weights_gb: Option<f64>,
    pub context: Option<u32>,
    pub concurrency: Option<u32>,
    pub precision: Option<String>,
    pub gb: Option<f64>,
    pub before_gb: Option<f64>,
    pub after_gb: Option<f64>,
    pub tokens: Option<u32>,
    pub benchmark: Option<String>,
    pub percent: Option<f64>,
    pub ms: Option<f64>,
    pub usd_per_million: Option<f64>,
    /// Weight formats a model is said to support (`INT4`, `INT8`, `GPTQ`).
    pub formats: Option<Vec<String>>,
}

impl ClaimKind {
    /// Keys a claim of this kind must set.
    fn required(self) -> &'static [&'static str] {
        match self {
            Self::DecodeRate => &["model", "device", "tokens_per_s", "weights_gb"],
            Self::Footprint | Self::ModelSize => &["model", "precision", "gb"],
            Self::MinMemory => &["model", "precision", "context", "gb"],
            Self::ContextWindow => &["model", "tokens"],
            Self::KvSaving => &["model", "before_gb", "after_gb", "weights_gb"],
            Self::Accuracy => &["model", "benchmark", "percent"],
            Self::TurnLatency => &["model", "ms"],
            Self::DeviceCost => &["usd_per_million"],
            Self::QuantizationSupport => &["model", "formats"],
        }
    }
}

impl ClaimFile {
    fn has(&self, key: &str) -> bool {
        match key {
            "model" => self.model.is_some(),
            "device" => self.device.is_some(),
            "tokens_per_s" => self.tokens_per_s.is_some(),
            "weights_gb" => self.weights_gb.is_some(),
            "context" => self.context.is_some(),
            "precision" => self.precision.is_some(),
            "gb" => self.gb.is_some(),
            "before_gb" => self.before_gb.is_some(),
            "after_gb" => self.after_gb.is_some(),
            "tokens" => self.tokens.is_some(),
            "benchmark" => self.benchmark.is_some(),
            "percent" => self.percent.is_some(),
            "ms" => self.ms.is_some(),
            "usd_per_million" => self.usd_per_million.is_some(),
            "formats" => self.formats.is_some(),
            _ => false,
        }
    }
}

/// Deserializes `text` (the contents of `file`) and refuses a `format` other than
/// [`INPUT_FORMAT`].
fn parse_versioned<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    format: impl Fn(&T) -> u32,
) -> Result<T, ReportError> {
    let bad = |message: String| ReportError::Input {
        file: file.into(),
        message,
    };
    let parsed: T = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let found = format(&parsed);
    if found != INPUT_FORMAT {
        return Err(bad(format!(
            "key `format`: this build reads format {INPUT_FORMAT}, the file says {found}"
        )));
    }
    Ok(parsed)
}

/// Parses and checks `text` (the contents of `file`).
pub fn parse_claims(file: &str, text: &str) -> Result<ClaimsFile, ReportError> {
    let parsed: ClaimsFile = parse_versioned(file, text, |f: &ClaimsFile| f.format)?;
    let bad = |message: String| ReportError::Input {
        file: file.into(),
        message,
    };
    let mut ids = std::collections::BTreeSet::new();
    for c in &parsed.claim {
        if !ids.insert(c.id.as_str()) {
            return Err(bad(format!("claim `{}` appears twice", c.id)));
        }
        if !parsed.source.iter().any(|s| s.id == c.source) {
            return Err(bad(format!(
                "claim `{}`: key `source`: no [[source]] with id `{}`",
                c.id, c.source
            )));
        }
        for key in c.kind.required() {
            if !c.has(key) {
                return Err(bad(format!(
                    "claim `{}`: kind `{:?}` needs key `{key}`",
                    c.id, c.kind
                )));
            }
        }
        if let Some(device) = &c.device
            && edgebench_core::device_profile::find(device).is_none()
        {
            return Err(bad(format!(
                "claim `{}`: key `device`: unknown device profile `{device}`",
                c.id
            )));
        }
    }
    for class in &parsed.device_class {
        for profile in &class.profiles {
            if edgebench_core::device_profile::find(profile).is_none() {
                return Err(bad(format!(
                    "device_class `{}`: key `profiles`: unknown device profile `{profile}`",
                    class.id
                )));
            }
        }
    }
    for m in &parsed.measurement {
        if !ids.insert(m.id.as_str()) {
            return Err(bad(format!("measurement `{}` appears twice", m.id)));
        }
        if !parsed.source.iter().any(|s| s.id == m.source) {
            return Err(bad(format!(
                "measurement `{}`: key `source`: no [[source]] with id `{}`",
                m.id, m.source
            )));
        }
        if !parsed.device_class.iter().any(|c| c.id == m.device_class) {
            return Err(bad(format!(
                "measurement `{}`: key `device_class`: no [[device_class]] with id `{}`",
                m.id, m.device_class
            )));
        }
        let ranges = [
            ("bandwidth_gb_s", Some(m.bandwidth_gb_s)),
            ("generation_tokens_per_s", Some(m.generation_tokens_per_s)),
            ("prefill_tokens_per_s", m.prefill_tokens_per_s),
        ];
        for (key, range) in ranges {
            if let Some([lo, hi]) = range
                && !(lo.is_finite() && lo > 0.0 && hi >= lo)
            {
                return Err(bad(format!(
                    "measurement `{}`: key `{key}` must be [low, high] with 0 < low <= high, got [{lo}, {hi}]",
                    m.id
                )));
            }
        }
        if !(m.weights_gb.is_finite() && m.weights_gb > 0.0) {
            return Err(bad(format!(
                "measurement `{}`: key `weights_gb` must be a positive number",
                m.id
            )));
        }
    }
    Ok(parsed)
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoiFile {
    pub format: u32,
    pub electricity_usd_per_kwh: f64,
    pub electricity_source: String,
    pub device: RoiDeviceFile,
    #[serde(default)]
    pub cloud: Vec<CloudPriceFile>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoiDeviceFile {
    pub name: String,
    pub price_usd: f64,
    pub price_source: String,
    pub lifetime_months: f64,
    pub active_hours_per_day: f64,
    pub usage_source: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudPriceFile {
    pub name: String,
    pub usd_per_million: f64,
    pub source: String,
    pub date: String,
}

pub fn parse_roi(file: &str, text: &str) -> Result<RoiFile, ReportError> {
    let parsed: RoiFile = parse_versioned(file, text, |f: &RoiFile| f.format)?;
    let bad = |message: String| ReportError::Input {
        file: file.into(),
        message,
    };
    let d = &parsed.device;
    for (key, value) in [
        ("device.price_usd", d.price_usd),
        ("device.lifetime_months", d.lifetime_months),
        ("device.active_hours_per_day", d.active_hours_per_day),
        ("electricity_usd_per_kwh", parsed.electricity_usd_per_kwh),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(bad(format!(
                "key `{key}` must be a positive number, got {value}"
            )));
        }
    }
    if d.active_hours_per_day > 24.0 {
        return Err(bad("key `device.active_hours_per_day` exceeds 24".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_inputs_parse() {
        let claims = parse_claims(
            "datasets/claims.toml",
            include_str!("../../../datasets/claims.toml"),
        )
        .expect("claims");
        assert!(claims.claim.len() >= 20);
        assert!(claims.measurement.len() >= 3 && claims.device_class.len() >= 2);
        let roi = parse_roi(
            "datasets/roi.toml",
            include_str!("../../../datasets/roi.toml"),
        )
        .expect("roi");
        assert_eq!(roi.cloud.len(), 5);
    }

    #[test]
    fn mistakes_name_the_file_and_key() {
        let base = "format = 1\n[[source]]\nid = \"s\"\ntitle = \"t\"\nwhere = \"w\"\n";
        let missing = format!(
            "{base}[[claim]]\nid = \"c\"\nsource = \"s\"\nwhere = \"x\"\nkind = \"decode_rate\"\nmodel = \"m\"\n"
        );
        let err = parse_claims("claims.toml", &missing)
            .expect_err("missing key")
            .to_string();
        assert!(
            err.contains("claims.toml") && err.contains("needs key `device`"),
            "{err}"
        );
        let typo = format!(
            "{base}[[claim]]\nid = \"c\"\nsource = \"s\"\nwhere = \"x\"\nkind = \"footprint\"\nmodle = \"m\"\n"
        );
        let err = parse_claims("claims.toml", &typo)
            .expect_err("typo")
            .to_string();
        assert!(err.contains("modle") && err.contains("line"), "{err}");
        let device = format!(
            "{base}[[claim]]\nid = \"c\"\nsource = \"s\"\nwhere = \"x\"\nkind = \"decode_rate\"\nmodel = \"m\"\ndevice = \"pixel-99\"\ntokens_per_s = [1.0, 2.0]\nweights_gb = 1.0\n"
        );
        let err = parse_claims("claims.toml", &device)
            .expect_err("device")
            .to_string();
        assert!(err.contains("pixel-99"), "{err}");
        let roi = include_str!("../../../datasets/roi.toml")
            .replace("price_usd = 400.0", "price_usd = -1.0");
        let err = parse_roi("roi.toml", &roi)
            .expect_err("negative")
            .to_string();
        assert!(err.contains("device.price_usd"), "{err}");
    }

    #[test]
    fn published_measurements_name_their_class_and_sane_ranges() {
        let base = "format = 1\n[[source]]\nid = \"s\"\ntitle = \"t\"\nwhere = \"w\"\n[[device_class]]\nid = \"android\"\nlabel = \"l\"\nprofiles = [\"galaxy-s24\"]\n";
        let measurement = |class: &str, tps: &str| {
            format!(
                "{base}[[measurement]]\nid = \"m\"\nsource = \"s\"\nwhere = \"x\"\ndevice_class = \"{class}\"\ndevice = \"d\"\nmodel = \"phi-4-mini\"\nquant = \"Q4_0\"\nweights_gb = 2.3\nbandwidth_gb_s = [67.2, 84.8]\ngeneration_tokens_per_s = {tps}\n"
            )
        };
        let ok = parse_claims("claims.toml", &measurement("android", "[9.5, 11.4]"))
            .expect("valid measurement");
        assert_eq!(ok.measurement.len(), 1);
        let err = parse_claims("claims.toml", &measurement("ios", "[9.5, 11.4]"))
            .expect_err("unknown class")
            .to_string();
        assert!(
            err.contains("device_class") && err.contains("`ios`"),
            "{err}"
        );
        let err = parse_claims("claims.toml", &measurement("android", "[11.4, 9.5]"))
            .expect_err("reversed range")
            .to_string();
        assert!(err.contains("generation_tokens_per_s"), "{err}");
        let err = parse_claims("claims.toml", &base.replace("galaxy-s24", "pixel-99"))
            .expect_err("unknown profile")
            .to_string();
        assert!(err.contains("pixel-99"), "{err}");
    }
}
