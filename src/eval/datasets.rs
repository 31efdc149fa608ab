//! Benchmark files: where they are, which fields hold the question and the reference answer.
//!
//! A dataset is a JSONL file, one problem per line. Known names map to `NAME/test.jsonl` in the
//! data directory with the field mapping of the reference evaluation suite; any other JSONL path
//! works with explicit field names.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "no data directory: pass --data-dir or set ARBITRAGE_DATA_DIR (the repository's own data/ folder, the default, is not here)"
    )]
    NoDataDir,
    #[error("unknown dataset `{name}` (known: {known}; or give a path to a .jsonl file)")]
    Unknown { name: String, known: String },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a JSON object")]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: {message}")]
    Field {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// How a known dataset's records are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub name: &'static str,
    /// Fields joined with a space to make the question.
    pub question: &'static [&'static str],
    /// The field that holds the reference answer (raw; see [`Problem::gold`]).
    pub answer: &'static str,
}

pub const KNOWN: &[Layout] = &[
    Layout {
        name: "gsm8k",
        question: &["question"],
        answer: "answer",
    },
    Layout {
        name: "math500",
        question: &["problem"],
        answer: "answer",
    },
    Layout {
        name: "aime24",
        question: &["problem"],
        answer: "answer",
    },
    Layout {
        name: "amc23",
        question: &["question"],
        answer: "answer",
    },
    Layout {
        name: "olympiadbench",
        question: &["question"],
        answer: "final_answer",
    },
    Layout {
        name: "minerva_math",
        question: &["problem"],
        answer: "solution",
    },
    Layout {
        name: "svamp",
        question: &["Body", "Question"],
        answer: "Answer",
    },
    Layout {
        name: "asdiv",
        question: &["body", "question"],
        answer: "answer",
    },
    Layout {
        name: "mawps",
        question: &["input"],
        answer: "target",
    },
    Layout {
        name: "college_math",
        question: &["question"],
        answer: "answer",
    },
];

/// One problem of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Zero-based line number among the file's problems; the identity used for resuming.
    pub idx: usize,
    pub question: String,
    /// The answer field as a string (numbers printed, lists joined with ", "). Datasets whose
    /// field holds a worked solution (gsm8k, minerva_math) need the grader's gold parsing.
    pub answer: String,
    /// The reference answer the grader compares with: the dataset's gold parsing for known
    /// datasets (e.g. the number after `####` in gsm8k), the answer field otherwise.
    pub gold: String,
    /// The whole record.
    pub record: Value,
}

/// A dataset resolved to a file and a field mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The known name, or the file stem of a custom file.
    pub name: String,
    pub path: PathBuf,
    pub question_fields: Vec<String>,
    pub answer_field: String,
    /// Whether the name is a known dataset whose gold answers the grader knows how to parse.
    pub known: bool,
}

/// The repository's own benchmark folder (`data/` beside `Cargo.toml`), found where the binary
/// was built.
pub const REPO_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

/// The data directory: the flag, else `$ARBITRAGE_DATA_DIR`, else the repository's `data/` (where
/// the binary was built, then `./data`) if present.
pub fn data_dir(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_owned());
    }
    if let Some(dir) = std::env::var_os("ARBITRAGE_DATA_DIR") {
        return Some(PathBuf::from(dir));
    }
    [Path::new(REPO_DATA_DIR), Path::new("data")]
        .into_iter()
        .find(|dir| dir.is_dir())
        .map(Path::to_owned)
}

impl Dataset {
    /// Resolves a dataset name or a `.jsonl` path. Field overrides apply to either.
    pub fn resolve(
        name_or_path: &str,
        data_dir: Option<&Path>,
        question_field: Option<&str>,
        answer_field: Option<&str>,
    ) -> Result<Dataset, DatasetError> {
        let known = KNOWN.iter().find(|l| l.name == name_or_path);
        let (name, path, layout) = match known {
            Some(layout) => {
                let dir = data_dir.ok_or(DatasetError::NoDataDir)?;
                (
                    layout.name.to_owned(),
                    dir.join(layout.name).join("test.jsonl"),
                    Some(layout),
                )
            }
            None if name_or_path.ends_with(".jsonl") || Path::new(name_or_path).is_file() => {
                let path = PathBuf::from(name_or_path);
                let stem = path
                    .file_stem()
                    .map_or("custom".into(), |s| s.to_string_lossy().into_owned());
                // A file inside a known dataset's directory keeps that dataset's mapping.
                let parent = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                let layout = parent.and_then(|p| KNOWN.iter().find(|l| l.name == p));
                (layout.map_or(stem, |l| l.name.to_owned()), path, layout)
            }
            None => {
                return Err(DatasetError::Unknown {
                    name: name_or_path.to_owned(),
                    known: KNOWN.iter().map(|l| l.name).collect::<Vec<_>>().join(", "),
                });
            }
        };
        let question_fields = match (question_field, layout) {
            (Some(f), _) => vec![f.to_owned()],
            (None, Some(l)) => l.question.iter().map(|s| (*s).to_owned()).collect(),
            (None, None) => vec!["question".to_owned()],
        };
        // An overridden answer field holds a bare answer, not the dataset's own format.
        let known = layout.is_some() && answer_field.is_none();
        let answer_field = match (answer_field, layout) {
            (Some(f), _) => f.to_owned(),
            (None, Some(l)) => l.answer.to_owned(),
            (None, None) => "answer".to_owned(),
        };
        Ok(Dataset {
            name,
            path,
            question_fields,
            answer_field,
            known,
        })
    }

    /// Reads every problem. A bad line is an error naming the file and the line.
    pub fn load(&self) -> Result<Vec<Problem>, DatasetError> {
        let file = File::open(&self.path).map_err(|source| DatasetError::Read {
            path: self.path.clone(),
            source,
        })?;
        let mut problems = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| DatasetError::Read {
                path: self.path.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let lineno = n + 1;
            let record: Value =
                serde_json::from_str(&line).map_err(|source| DatasetError::Json {
                    path: self.path.clone(),
                    line: lineno,
                    source,
                })?;
            let field_err = |message: String| DatasetError::Field {
                path: self.path.clone(),
                line: lineno,
                message,
            };
            if !record.is_object() {
                return Err(field_err("expected a JSON object".into()));
            }
            let mut parts = Vec::new();
            for field in &self.question_fields {
                match record.get(field) {
                    Some(Value::String(s)) => parts.push(s.trim().to_owned()),
                    Some(other) => {
                        return Err(field_err(format!(
                            "field `{field}` is not a string: {other}"
                        )));
                    }
                    None => return Err(field_err(format!("missing question field `{field}`"))),
                }
            }
            let answer = match record.get(&self.answer_field) {
                Some(v) => value_text(v).ok_or_else(|| {
                    field_err(format!(
                        "answer field `{}` is empty or not text: {v}",
                        self.answer_field
                    ))
                })?,
                None => {
                    return Err(field_err(format!(
                        "missing answer field `{}`",
                        self.answer_field
                    )));
                }
            };
            let gold = if self.known {
                arbitrage_grader::gold_answer(&self.name, &record)
                    .map_err(|e| field_err(e.to_string()))?
            } else {
                answer.clone()
            };
            problems.push(Problem {
                idx: problems.len(),
                question: parts.join(" "),
                answer,
                gold,
                record,
            });
        }
        Ok(problems)
    }
}

/// A JSON answer as text: strings as they are, numbers printed (`145.0` as `145`), lists joined.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        Value::Array(items) if !items.is_empty() => {
            let parts: Option<Vec<String>> = items.iter().map(value_text).collect();
            parts.map(|p| p.join(", "))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(lines: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".jsonl")
            .tempfile()
            .unwrap();
        f.write_all(lines.as_bytes()).unwrap();
        f
    }

    #[test]
    fn a_custom_file_uses_the_given_fields() {
        let f = write("{\"q\": \"1+1?\", \"a\": 2}\n\n{\"q\": \"2+2?\", \"a\": \"4\"}\n");
        let d = Dataset::resolve(f.path().to_str().unwrap(), None, Some("q"), Some("a")).unwrap();
        let p = d.load().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].question.as_str(), p[0].answer.as_str()),
            ("1+1?", "2")
        );
        assert_eq!(p[1].idx, 1);
    }

    #[test]
    fn a_malformed_line_names_the_file_and_line() {
        let f = write("{\"question\": \"a\", \"answer\": \"1\"}\n{not json\n");
        let d = Dataset::resolve(f.path().to_str().unwrap(), None, None, None).unwrap();
        let err = d.load().unwrap_err().to_string();
        assert!(err.contains(&format!("{}:2", f.path().display())), "{err}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let f = write("{\"question\": \"a\"}\n");
        let d = Dataset::resolve(f.path().to_str().unwrap(), None, None, None).unwrap();
        let err = d.load().unwrap_err().to_string();
        assert!(err.contains(":1") && err.contains("`answer`"), "{err}");
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = Dataset::resolve("nope", Some(Path::new("/x")), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gsm8k") && err.contains("nope"), "{err}");
    }

    #[test]
    fn numbers_and_lists_become_text() {
        assert_eq!(value_text(&serde_json::json!(145.0)).unwrap(), "145");
        assert_eq!(value_text(&serde_json::json!(2.5)).unwrap(), "2.5");
        assert_eq!(value_text(&serde_json::json!(["1", "2"])).unwrap(), "1, 2");
    }

    /// The sets `data/README.md` lists as shipped.
    const SHIPPED: &[&str] = &["gsm8k", "math500", "svamp", "olympiadbench"];

    #[test]
    fn every_shipped_dataset_loads() {
        let dir = Path::new(REPO_DATA_DIR);
        for name in SHIPPED {
            let d = Dataset::resolve(name, Some(dir), None, None).unwrap();
            let problems = d.load().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!problems.is_empty(), "{name}");
            assert!(problems.iter().all(|p| !p.gold.is_empty()), "{name}");
        }
        assert_eq!(
            Dataset::resolve("gsm8k", Some(dir), None, None)
                .unwrap()
                .load()
                .unwrap()
                .len(),
            1319
        );
    }

    #[test]
    fn every_known_dataset_present_loads() {
        let dir = Path::new(REPO_DATA_DIR);
        for layout in KNOWN {
            let d = Dataset::resolve(layout.name, Some(dir), None, None).unwrap();
            if !d.path.exists() {
                eprintln!("skipped: {} (not shipped)", d.path.display());
                continue;
            }
            let problems = d.load().unwrap_or_else(|e| panic!("{}: {e}", layout.name));
            assert!(!problems.is_empty(), "{}", layout.name);
        }
    }

    #[test]
    fn the_repository_data_is_the_default() {
        let flag = Path::new("/somewhere/else");
        assert_eq!(data_dir(Some(flag)).unwrap(), flag);
        if std::env::var_os("ARBITRAGE_DATA_DIR").is_none() {
            assert_eq!(data_dir(None).unwrap(), Path::new(REPO_DATA_DIR));
        }
    }
}
