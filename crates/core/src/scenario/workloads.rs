//! Validation of the tables that choose what a case does instead of timed repetitions:
//! `[accuracy]` (multiple-choice scoring), `[goodput]` (a rate sweep against latency targets)
//! and `[sustained]` (minutes of decoding). Each error points at its key, as in `validate`.

use super::file::ScenarioFile;
use super::{
    Accuracy, Category, Cooldown, Ctx, Goodput, QUALITY_DEFAULT_CONTEXT, Quality, Quant,
    ScenarioError, Sustained,
};
use toml::Spanned;

/// The `[accuracy]` table, which only an accuracy scenario may have.
pub(super) fn accuracy(
    cx: &Ctx<'_>,
    raw: &ScenarioFile,
) -> Result<Option<Accuracy>, ScenarioError> {
    Ok(match (&raw.accuracy, raw.category) {
        (None, Category::Accuracy) => Some(Accuracy {
            few_shot: 0,
            subjects: None,
            questions_per_subject: None,
        }),
        (None, _) => None,
        (Some(table), category) if category != Category::Accuracy => {
            return Err(cx.at(
                "accuracy",
                table,
                "an [accuracy] table needs category = \"accuracy\"",
            ));
        }
        (Some(f), _) => {
            let f = f.get_ref();
            if let Some(subjects) = &f.subjects
                && subjects.get_ref().is_empty()
            {
                return Err(cx.at("accuracy.subjects", subjects, "the list is empty"));
            }
            if let Some(n) = &f.questions_per_subject
                && *n.get_ref() == 0
            {
                return Err(cx.at("accuracy.questions_per_subject", n, "must be at least 1"));
            }
            Some(Accuracy {
                few_shot: f.few_shot,
                subjects: f.subjects.as_ref().map(|s| s.get_ref().clone()),
                questions_per_subject: f.questions_per_subject.as_ref().map(|n| *n.get_ref()),
            })
        }
    })
}

/// The `[goodput]` table.
pub(super) fn goodput(cx: &Ctx<'_>, raw: &ScenarioFile) -> Result<Option<Goodput>, ScenarioError> {
    use crate::goodput::{PRESETS, SweepConfig, Targets};
    let Some(table) = &raw.goodput else {
        return Ok(None);
    };
    if raw.category == Category::Accuracy || raw.sustained.is_some() {
        return Err(cx.at(
            "goodput",
            table,
            "a goodput sweep serves requests; it can't be an accuracy or a sustained scenario",
        ));
    }
    let f = table.get_ref();
    let positive_f64 =
        |key: &str, v: &Option<Spanned<f64>>| -> Result<Option<f64>, ScenarioError> {
            match v {
                Some(x) if !(*x.get_ref() > 0.0 && x.get_ref().is_finite()) => {
                    Err(cx.at(&format!("goodput.{key}"), x, "must be a positive number"))
                }
                Some(x) => Ok(Some(*x.get_ref())),
                None => Ok(None),
            }
        };
    let (ttft, tpot) = (
        positive_f64("ttft_ms", &f.ttft_ms)?,
        positive_f64("tpot_ms", &f.tpot_ms)?,
    );
    let (preset, mut targets) = match (&f.preset, ttft, tpot) {
        (Some(p), None, None) => {
            let name = p.get_ref();
            let Some(t) = crate::goodput::preset(name) else {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                return Err(cx.at(
                    "goodput.preset",
                    p,
                    format!("unknown preset `{name}`; one of: {}", names.join(", ")),
                ));
            };
            (Some(name.clone()), t)
        }
        (None, Some(ttft_ms), Some(tpot_ms)) => (
            None,
            Targets {
                ttft_ms,
                tpot_ms,
                share: 0.9,
            },
        ),
        _ => {
            return Err(cx.at(
                "goodput",
                table,
                "give either `preset` or both `ttft_ms` and `tpot_ms`",
            ));
        }
    };
    if let Some(share) = &f.share {
        let v = *share.get_ref();
        if !(v > 0.0 && v <= 1.0) {
            return Err(cx.at("goodput.share", share, "must be above 0 and at most 1"));
        }
        targets.share = v;
    }
    let count = |key: &str, v: &Option<Spanned<u32>>, default: u32| match v {
        Some(x) if *x.get_ref() == 0 => {
            Err(cx.at(&format!("goodput.{key}"), x, "must be at least 1"))
        }
        Some(x) => Ok(*x.get_ref()),
        None => Ok(default),
    };
    let defaults = SweepConfig::default();
    Ok(Some(Goodput {
        preset,
        targets,
        sweep: SweepConfig {
            start_rate_per_s: positive_f64("start_rate_per_s", &f.start_rate_per_s)?
                .unwrap_or(defaults.start_rate_per_s),
            max_steps: count("max_steps", &f.max_steps, defaults.max_steps as u32)? as usize,
            resolution: defaults.resolution,
        },
        requests_per_rate: count("requests_per_rate", &f.requests_per_rate, 16)?,
        max_seconds: positive_f64("max_seconds", &f.max_seconds)?.unwrap_or(120.0),
    }))
}

/// The `[sustained]` table.
pub(super) fn sustained(
    cx: &Ctx<'_>,
    raw: &ScenarioFile,
) -> Result<Option<Sustained>, ScenarioError> {
    let Some(table) = &raw.sustained else {
        return Ok(None);
    };
    if raw.category == Category::Accuracy {
        return Err(cx.at(
            "sustained",
            table,
            "a sustained scenario generates; category \"accuracy\" scores and cannot have one",
        ));
    }
    let f = table.get_ref();
    let seconds = match &f.seconds {
        Some(s) if !(1..=86_400).contains(s.get_ref()) => {
            return Err(cx.at("sustained.seconds", s, "must be 1 to 86400 (a day)"));
        }
        Some(s) => *s.get_ref(),
        None => crate::scenario::SUSTAINED_DEFAULT_SECONDS,
    };
    if let (None, Some(margin)) = (&f.cooldown_max_seconds, &f.cooldown_margin_c) {
        return Err(cx.at(
            "sustained.cooldown_margin_c",
            margin,
            "a margin without `cooldown_max_seconds` does nothing; set both",
        ));
    }
    let cooldown = match &f.cooldown_max_seconds {
        None => None,
        Some(max) => {
            let margin_c = match &f.cooldown_margin_c {
                Some(m) if !(*m.get_ref() > 0.0 && m.get_ref().is_finite()) => {
                    return Err(cx.at("sustained.cooldown_margin_c", m, "must be above 0 °C"));
                }
                Some(m) => *m.get_ref(),
                None => 2.0,
            };
            Some(Cooldown {
                max_seconds: *max.get_ref(),
                margin_c,
            })
        }
    };
    Ok(Some(Sustained { seconds, cooldown }))
}

/// The `[quality]` table: a speed scenario's cases also measure KLD against a reference.
pub(super) fn quality(
    cx: &Ctx<'_>,
    raw: &ScenarioFile,
    context: u32,
    models: &[(String, Vec<Quant>)],
    registry: &crate::registry::Registry,
) -> Result<Option<Quality>, ScenarioError> {
    let Some(table) = &raw.quality else {
        return Ok(None);
    };
    if raw.category == Category::Accuracy || raw.goodput.is_some() || raw.sustained.is_some() {
        return Err(cx.at(
            "quality",
            table,
            "a [quality] table belongs to a speed scenario (not accuracy, goodput or sustained)",
        ));
    }
    let f = table.get_ref();
    if f.corpus.get_ref().trim().is_empty() {
        return Err(cx.at("quality.corpus", &f.corpus, "name the text file"));
    }
    let chunk = match &f.context {
        Some(c) if *c.get_ref() < 16 || *c.get_ref() > context => {
            return Err(cx.at(
                "quality.context",
                c,
                format!("must be 16 to the scenario's context ({context})"),
            ));
        }
        Some(c) => *c.get_ref(),
        None if context < QUALITY_DEFAULT_CONTEXT => {
            return Err(cx.at(
                "quality",
                table,
                format!(
                    "the default chunk of {QUALITY_DEFAULT_CONTEXT} tokens exceeds the scenario's context ({context}); set `context`"
                ),
            ));
        }
        None => QUALITY_DEFAULT_CONTEXT,
    };
    let chunks = match &f.chunks {
        Some(n) if *n.get_ref() == 0 => {
            return Err(cx.at("quality.chunks", n, "must be at least 1"));
        }
        n => n.as_ref().map(|n| *n.get_ref()),
    };
    let reference_quant = match &f.reference_quant {
        Some(reference) => Some(
            reference
                .get_ref()
                .parse::<Quant>()
                .map_err(|e| cx.at("quality.reference_quant", reference, e.to_string()))?,
        ),
        None => None,
    };
    if let (Some(reference), Some(quant)) = (&f.reference_quant, reference_quant) {
        for (id, _) in models {
            if registry.get(id).and_then(|m| m.file(quant)).is_none() {
                return Err(cx.at(
                    "quality.reference_quant",
                    reference,
                    format!(
                        "model `{id}` has no `{}` file to compare against",
                        reference.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(Some(Quality {
        corpus: f.corpus.get_ref().clone(),
        context: chunk,
        chunks,
        reference_quant,
    }))
}
