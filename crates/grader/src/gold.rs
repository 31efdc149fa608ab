//! Gold answers per dataset in `data/` (field names and formats differ per dataset).

use serde_json::Value;

use crate::extract::find_last_boxed;

/// Why a gold answer could not be read from a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoldError {
    #[error("unknown dataset `{0}`")]
    UnknownDataset(String),
    #[error("{dataset}: record has no field `{field}`")]
    MissingField {
        dataset: String,
        field: &'static str,
    },
    #[error("{dataset}: field `{field}` is malformed: {reason}")]
    BadField {
        dataset: String,
        field: &'static str,
        reason: String,
    },
}

/// The benchmark datasets, by directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Gsm8k,
    Math500,
    Aime24,
    Amc23,
    OlympiadBench,
    MinervaMath,
    Svamp,
    Asdiv,
    Mawps,
    CollegeMath,
}

impl Dataset {
    pub const ALL: [Dataset; 10] = [
        Dataset::Gsm8k,
        Dataset::Math500,
        Dataset::Aime24,
        Dataset::Amc23,
        Dataset::OlympiadBench,
        Dataset::MinervaMath,
        Dataset::Svamp,
        Dataset::Asdiv,
        Dataset::Mawps,
        Dataset::CollegeMath,
    ];

    /// Directory name under `data/`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Gsm8k => "gsm8k",
            Dataset::Math500 => "math500",
            Dataset::Aime24 => "aime24",
            Dataset::Amc23 => "amc23",
            Dataset::OlympiadBench => "olympiadbench",
            Dataset::MinervaMath => "minerva_math",
            Dataset::Svamp => "svamp",
            Dataset::Asdiv => "asdiv",
            Dataset::Mawps => "mawps",
            Dataset::CollegeMath => "college_math",
        }
    }

    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The field holding the gold answer.
    pub fn answer_field(self) -> &'static str {
        match self {
            Dataset::Gsm8k
            | Dataset::Math500
            | Dataset::Aime24
            | Dataset::Amc23
            | Dataset::Asdiv
            | Dataset::CollegeMath => "answer",
            Dataset::OlympiadBench => "final_answer",
            Dataset::MinervaMath => "solution",
            Dataset::Svamp => "Answer",
            Dataset::Mawps => "target",
        }
    }
}

fn format_number(v: &Value) -> Option<String> {
    if let Some(i) = v.as_i64() {
        return Some(i.to_string());
    }
    let f = v.as_f64()?;
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Some(format!("{}", f as i64))
    } else {
        Some(format!("{f}"))
    }
}

/// `"27.0"` → `"27"`; other strings unchanged.
fn trim_float_string(s: &str) -> String {
    let t = s.trim();
    match t.strip_suffix(".0") {
        Some(i)
            if !i.is_empty()
                && i.trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit()) =>
        {
            i.to_string()
        }
        _ => t.to_string(),
    }
}

/// The gold answer of one record of `dataset` (a directory name in `data/`).
pub fn gold_answer(dataset: &str, record: &Value) -> Result<String, GoldError> {
    let ds = Dataset::from_name(dataset)
        .ok_or_else(|| GoldError::UnknownDataset(dataset.to_string()))?;
    let field = ds.answer_field();
    let v = record
        .get(field)
        .filter(|v| !v.is_null())
        .ok_or(GoldError::MissingField {
            dataset: dataset.to_string(),
            field,
        })?;
    let bad = |reason: &str| GoldError::BadField {
        dataset: dataset.to_string(),
        field,
        reason: reason.to_string(),
    };
    match ds {
        Dataset::Gsm8k => {
            let s = v.as_str().ok_or_else(|| bad("not a string"))?;
            let (_, ans) = s
                .rsplit_once("####")
                .ok_or_else(|| bad("no `#### N` line"))?;
            let a = ans.trim().replace(',', "");
            if a.is_empty() {
                return Err(bad("empty answer after ####"));
            }
            Ok(a)
        }
        Dataset::OlympiadBench => {
            let list = v.as_array().ok_or_else(|| bad("not a list"))?;
            let parts: Vec<String> = list
                .iter()
                .filter_map(|x| x.as_str())
                .map(|x| {
                    crate::normalize::strip_delims(x)
                        .replace('$', "")
                        .trim()
                        .to_string()
                })
                .filter(|x| !x.is_empty())
                .collect();
            if parts.is_empty() {
                return Err(bad("empty list"));
            }
            Ok(parts.join(", "))
        }
        Dataset::MinervaMath => {
            let s = v.as_str().ok_or_else(|| bad("not a string"))?;
            let b = find_last_boxed(s).ok_or_else(|| bad("no \\boxed{} in solution"))?;
            // Stray `$ $` inside the box (math mode toggled off and on) carries no meaning.
            Ok(b.replace("$ $", " ").replace("$$", ""))
        }
        Dataset::Asdiv => {
            let s = match v.as_str() {
                Some(s) => s.to_string(),
                None => format_number(v).ok_or_else(|| bad("not a string or number"))?,
            };
            // "9 (apples)": drop the parenthesised unit.
            let a = match s.find(" (") {
                Some(p) if s.trim_end().ends_with(')') => s[..p].trim().to_string(),
                _ => s.trim().to_string(),
            };
            if a.is_empty() {
                return Err(bad("empty"));
            }
            Ok(a)
        }
        Dataset::Svamp | Dataset::Mawps => match v.as_str() {
            Some(s) => Ok(trim_float_string(s)),
            None => format_number(v).ok_or_else(|| bad("not a number")),
        },
        Dataset::Math500 | Dataset::Aime24 | Dataset::Amc23 | Dataset::CollegeMath => {
            let s = match v.as_str() {
                Some(s) => trim_float_string(s),
                None => format_number(v).ok_or_else(|| bad("not a string or number"))?,
            };
            if s.is_empty() {
                return Err(bad("empty"));
            }
            Ok(s)
        }
    }
}
