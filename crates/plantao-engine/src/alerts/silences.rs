//! Silences as people ask for them (the API and `plantao silence`): matchers written
//! `name=value`, a start (now when not given), an end or a duration, a comment, an author;
//! checked here once for both, and audited in the same transaction that stores them.

use chrono::{DateTime, Utc};
use plantao_store::{Matcher, Silence, Timestamp, Write};
use uuid::Uuid;

use super::to_delta;
use crate::clock::shown;

/// What someone asks to silence, and for how long.
#[derive(Clone, Debug, Default)]
pub struct SilenceRequest {
    /// `name=value` or `name!=value`, `*` standing for any text: `pipeline=billing`.
    pub matchers: Vec<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Instead of `ends_at`: `2h`, `30m`, counted from the start.
    pub duration: Option<String>,
    /// Why: "database maintenance".
    pub comment: String,
}

/// The silence `request` asks for, by `author` at `now`, and the writes that store and audit
/// it; what is wrong with the request otherwise.
pub fn add(
    request: &SilenceRequest,
    author: &str,
    now: Timestamp,
) -> Result<(Silence, Vec<Write>), String> {
    if request.matchers.is_empty() {
        return Err(
            "a silence needs at least one matcher, e.g. pipeline=billing or rule=db-down".into(),
        );
    }
    let matchers = request
        .matchers
        .iter()
        .map(|m| Matcher::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    let starts_at = request.starts_at.unwrap_or(now);
    let ends_at = match (&request.ends_at, &request.duration) {
        (Some(end), None) => *end,
        (None, Some(d)) => {
            let d = plantao_config::parse_duration(d)
                .map_err(|e| format!("the duration `{d}` is not one: {e} (e.g. 2h, 90m)"))?;
            starts_at + to_delta(d)
        }
        (Some(_), Some(_)) => {
            return Err("give an end or a duration, not both".into());
        }
        (None, None) => {
            return Err("a silence needs an end or a duration, e.g. a duration of 2h".into());
        }
    };
    if ends_at <= now {
        return Err(format!(
            "the silence would have ended already ({})",
            shown(ends_at)
        ));
    }
    if ends_at <= starts_at {
        return Err(format!(
            "the silence ends ({}) before it starts ({})",
            shown(ends_at),
            shown(starts_at)
        ));
    }
    let comment = request.comment.trim();
    if comment.is_empty() {
        return Err(
            "say why in the comment (e.g. \"database maintenance\"): the others will read it"
                .into(),
        );
    }
    let silence = Silence {
        id: Uuid::now_v7(),
        matchers,
        starts_at,
        ends_at,
        comment: comment.to_owned(),
        author: author.to_owned(),
        created_at: now,
    };
    let detail = format!(
        "{} from {} to {}: {}",
        describe(&silence.matchers),
        starts_at.format("%Y-%m-%d %H:%M UTC"),
        ends_at.format("%Y-%m-%d %H:%M UTC"),
        silence.comment
    );
    let writes = vec![
        Write::AddSilence(Box::new(silence.clone())),
        Write::audit(author, "silence.add", &silence.id.to_string(), Some(detail)),
    ];
    Ok((silence, writes))
}

/// The writes of `actor` ending silence `id` now, audited.
pub fn expire(id: Uuid, actor: &str, now: Timestamp) -> Vec<Write> {
    vec![
        Write::ExpireSilence { id, at: now },
        Write::audit(actor, "silence.expire", &id.to_string(), None),
    ]
}

/// The matchers as people write them: `pipeline=billing severity!=info`.
pub fn describe(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
