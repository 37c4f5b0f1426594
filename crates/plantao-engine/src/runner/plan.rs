//! What a run will do, decided before anything runs: the parameters resolved against the
//! pipeline's, the steps to run or skip (`--skip`, `--only`), and the order between them.

use std::collections::BTreeMap;

use plantao_config::{Pipeline, Step};
use plantao_model::Trigger;
use plantao_store::{NewRun, Period, StepSelection, Timestamp};

/// What the caller asks for.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    pub params: BTreeMap<String, String>,
    pub skip: Vec<String>,
    pub only: Vec<String>,
    /// Run even when the pipeline's inputs are unchanged since its last success.
    pub force: bool,
    /// A backfill's days.
    pub period: Option<Period>,
}

/// A mistake in a [`RunRequest`]: said before the run is created.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("pipeline `{pipeline}` has no parameter `{name}`; its parameters are: {known}")]
    UnknownParam {
        pipeline: String,
        name: String,
        known: String,
    },
    #[error("pipeline `{pipeline}` needs the parameter `{name}`: pass --param {name}=VALUE")]
    MissingParam { pipeline: String, name: String },
    #[error("pipeline `{pipeline}` has no step `{name}`; its steps are: {known}")]
    UnknownStep {
        pipeline: String,
        name: String,
        known: String,
    },
}

/// One step in the plan.
#[derive(Debug)]
pub struct Planned<'p> {
    pub step: &'p Step,
    /// Indices (in the same list) of the steps that must end first.
    pub after: Vec<usize>,
    /// Why the step will not run, when it will not.
    pub skipped: Option<&'static str>,
}

#[derive(Debug)]
pub struct Plan<'p> {
    pub pipeline: &'p Pipeline,
    /// What the steps receive.
    pub params: BTreeMap<String, String>,
    /// What the run record keeps: defaults taken from the environment are left out.
    pub recorded_params: BTreeMap<String, String>,
    pub steps: Vec<Planned<'p>>,
    pub finally: Vec<Planned<'p>>,
    /// The steps asked for, as the run record keeps them.
    pub selection: StepSelection,
    pub force: bool,
    pub period: Option<Period>,
}

impl<'p> Plan<'p> {
    /// The run that carries this plan out on whichever node claims it.
    pub fn queued(&self, trigger: Trigger, at: Timestamp) -> NewRun {
        NewRun {
            params: self.recorded_params.clone(),
            selection: self.selection.clone(),
            force: self.force,
            period: self.period,
            ..NewRun::queued(&self.pipeline.name, trigger, at)
        }
    }

    pub fn new(pipeline: &'p Pipeline, request: &RunRequest) -> Result<Plan<'p>, PlanError> {
        let params = resolve_params(pipeline, &request.params)?;
        // The record keeps what was given and the defaults that are no secret; a claimed run
        // resolves the secret ones again from the configuration.
        let recorded_params = params
            .iter()
            .filter(|(name, _)| {
                request.params.contains_key(*name)
                    || !pipeline
                        .params
                        .get(*name)
                        .and_then(|p| p.default.as_ref())
                        .is_some_and(|d| d.is_secret())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let names: Vec<&str> = pipeline
            .steps
            .iter()
            .chain(&pipeline.finally)
            .map(|s| s.name.as_str())
            .collect();
        for name in request.skip.iter().chain(&request.only) {
            if !names.contains(&name.as_str()) {
                return Err(PlanError::UnknownStep {
                    pipeline: pipeline.name.clone(),
                    name: name.clone(),
                    known: names.join(", "),
                });
            }
        }
        let skipped = |step: &Step| {
            if request.skip.contains(&step.name) {
                Some("named by --skip")
            } else if !request.only.is_empty() && !request.only.contains(&step.name) {
                Some("not named by --only")
            } else {
                None
            }
        };
        let order = |list: &'p [Step]| -> Vec<Planned<'p>> {
            let graph = list.iter().any(|s| !s.needs.is_empty());
            list.iter()
                .enumerate()
                .map(|(i, step)| Planned {
                    step,
                    after: if graph {
                        step.needs
                            .iter()
                            .filter_map(|n| list.iter().position(|s| &s.name == n))
                            .collect()
                    } else {
                        i.checked_sub(1).into_iter().collect()
                    },
                    skipped: skipped(step),
                })
                .collect()
        };
        Ok(Plan {
            pipeline,
            params,
            recorded_params,
            steps: order(&pipeline.steps),
            finally: order(&pipeline.finally),
            selection: StepSelection {
                skip: request.skip.clone(),
                only: request.only.clone(),
            },
            force: request.force,
            period: request.period,
        })
    }
}

fn resolve_params(
    pipeline: &Pipeline,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PlanError> {
    for name in given.keys() {
        if !pipeline.params.contains_key(name) {
            let known: Vec<&str> = pipeline.params.keys().map(String::as_str).collect();
            return Err(PlanError::UnknownParam {
                pipeline: pipeline.name.clone(),
                name: name.clone(),
                known: if known.is_empty() {
                    "(none)".into()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    let mut out = BTreeMap::new();
    for (name, p) in &pipeline.params {
        match given
            .get(name)
            .cloned()
            .or_else(|| p.default.as_ref().map(|d| d.expose().to_owned()))
        {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None if p.required => {
                return Err(PlanError::MissingParam {
                    pipeline: pipeline.name.clone(),
                    name: name.clone(),
                });
            }
            None => {}
        }
    }
    Ok(out)
}
