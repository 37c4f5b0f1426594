//! Message templates (minijinja, Jinja2's syntax): checked when the configuration is read, so
//! a typo is a diagnostic at start, not a broken notification in the night. The engine renders
//! them; docs/alerts.md lists what they can read.

use crate::reader::{self, Cx, Value};

/// The template under `key`, if its syntax is right.
pub(crate) fn read(cx: &mut Cx, key: &str, v: &Value) -> Option<String> {
    let text = reader::text(cx, key, v)?.expose().to_owned();
    if let Err(why) = check(&text) {
        cx.error(
            v.span(),
            format!("`{key}` is not a valid template: {why}"),
            Some(
                "templates use Jinja syntax: {{ alert.rule }}, {% if alert.pipeline %}…{% endif %}; docs/alerts.md lists the variables"
                    .into(),
            ),
        );
        return None;
    }
    Some(text)
}

/// Whether `text` parses as a template; why not, when it does not.
pub fn check(text: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.template_from_str(text).map(|_| ()).map_err(|e| {
        let detail = e.detail().unwrap_or("syntax error");
        match e.line() {
            Some(line) => format!("{detail} (line {line} of the template)"),
            None => detail.to_owned(),
        }
    })
}
