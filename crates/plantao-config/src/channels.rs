//! `[[channels]]` in plantao.toml: where notifications go.

use std::time::Duration;

use plantao_model::Text;
use toml::de::DeValue;

use crate::alerts::{required, required_name, unknown};
use crate::reader::{self, Cx, Table, Value};
use crate::types::{Channel, ChannelKind, Language, SmtpTls};

pub(crate) const CHANNEL_KEYS: &[&str] = &[
    "name", "kind", "url", "secret", "headers", "instance", "api_key", "to", "token", "chat_id",
    "run", "host", "port", "tls", "username", "password", "from", "language", "timeout", "max_age",
    "template",
];
const CHANNEL_KINDS: &[&str] = &[
    "webhook", "slack", "whatsapp", "telegram", "email", "command",
];
/// Where the Telegram Bot API is, unless a channel's `url` says otherwise.
const TELEGRAM_API: &str = "https://api.telegram.org";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The channels, and the name of every channel written (a broken one included, so that rules
/// naming it are not reported as well).
pub(crate) fn read_channels(cx: &mut Cx, v: &Value) -> (Vec<Channel>, Vec<String>) {
    let Some(items) = reader::array(cx, "channels", v) else {
        return (Vec::new(), Vec::new());
    };
    let mut out: Vec<Channel> = Vec::new();
    let mut names = Vec::new();
    for item in items {
        let Some(t) = reader::table(cx, "[[channels]]", item) else {
            continue;
        };
        t.check_keys(cx, "in [[channels]]", CHANNEL_KEYS);
        if let Some(DeValue::String(name)) = t.get("name").map(|v| v.get_ref()) {
            names.push(name.to_string());
        }
        let Some(channel) = read_channel(cx, t) else {
            continue;
        };
        if out.iter().any(|c| c.name == channel.name) {
            cx.error(
                t.span(),
                format!("a channel named `{}` is defined twice", channel.name),
                Some("channel names must be unique".into()),
            );
            continue;
        }
        out.push(channel);
    }
    (out, names)
}

/// The keys that belong to one kind of channel or another.
const KIND_KEYS: &[&str] = &[
    "url", "secret", "headers", "instance", "api_key", "to", "token", "chat_id", "run", "host",
    "port", "tls", "username", "password", "from",
];

fn read_channel(cx: &mut Cx, t: Table) -> Option<Channel> {
    let name = required_name(cx, t, "[[channels]]")?;
    let kind_value = required(cx, t, "kind", &format!("channel `{name}`"), "\"webhook\"")?;
    let kind = reader::text(cx, "kind", kind_value)?;
    let place = format!("{} channel `{name}`", kind.expose());
    let allowed: &[&str] = match kind.expose() {
        "webhook" => &["url", "secret", "headers"],
        "slack" => &["url"],
        "whatsapp" => &["url", "instance", "api_key", "to"],
        "telegram" => &["url", "token", "chat_id"],
        "command" => &["run"],
        "email" => &["host", "port", "tls", "username", "password", "from", "to"],
        other => {
            unknown(cx, kind_value, "channel kind", other, CHANNEL_KINDS);
            return None;
        }
    };
    for key in KIND_KEYS.iter().filter(|k| !allowed.contains(k)) {
        if let Some(v) = t.get(key) {
            cx.error(
                v.span(),
                format!("`{key}` does not apply to a {} channel", kind.expose()),
                Some(format!(
                    "a {} channel takes: {}",
                    kind.expose(),
                    allowed.join(", ")
                )),
            );
        }
    }
    let field = |cx: &mut Cx, key: &str, example: &str| {
        required(cx, t, key, &place, example).and_then(|v| reader::text(cx, key, v))
    };
    let kind = match kind.expose() {
        "webhook" => ChannelKind::Webhook {
            url: field(cx, "url", "\"https://…\"")?,
            secret: t.get("secret").and_then(|v| reader::text(cx, "secret", v)),
            headers: t
                .get("headers")
                .map(|v| reader::text_map(cx, "headers", v))
                .unwrap_or_default(),
        },
        "slack" => ChannelKind::Slack {
            url: field(cx, "url", "\"${env:SLACK_WEBHOOK_URL}\"")?,
        },
        "whatsapp" => {
            let url = field(cx, "url", "\"${env:EVOLUTION_URL}\"");
            let instance = field(cx, "instance", "\"ops\"");
            let api_key = field(cx, "api_key", "\"${env:EVOLUTION_API_KEY}\"");
            let to = field(cx, "to", "\"5511999990000\"");
            ChannelKind::Whatsapp {
                url: url?,
                instance: instance?,
                api_key: api_key?,
                to: to?,
            }
        }
        "telegram" => {
            let url = match t.get("url") {
                Some(v) => reader::text(cx, "url", v)?,
                None => Text::plain(TELEGRAM_API),
            };
            let token = field(cx, "token", "\"${env:TELEGRAM_BOT_TOKEN}\"");
            let chat_id = field(cx, "chat_id", "\"-1001234567890\"");
            ChannelKind::Telegram {
                url,
                token: token?,
                chat_id: chat_id?,
            }
        }
        "email" => read_email(cx, t, &place)?,
        _ => ChannelKind::Command {
            run: field(cx, "run", "\"./notify.sh\"")?,
        },
    };
    let language = match t.get("language") {
        None => Language::En,
        Some(v) => match reader::text(cx, "language", v)?.expose() {
            "en" => Language::En,
            "pt-BR" | "pt-br" | "pt" => Language::PtBr,
            other => {
                cx.error(
                    v.span(),
                    format!("`language` must be \"en\" or \"pt-BR\", found `{other}`"),
                    None,
                );
                return None;
            }
        },
    };
    Some(Channel {
        name,
        kind,
        language,
        timeout: t
            .get("timeout")
            .and_then(|v| reader::duration(cx, "timeout", v))
            .unwrap_or(DEFAULT_TIMEOUT),
        max_age: t
            .get("max_age")
            .and_then(|v| reader::duration(cx, "max_age", v))
            .unwrap_or(DEFAULT_MAX_AGE),
        template: t
            .get("template")
            .and_then(|v| crate::template::read(cx, "template", v)),
    })
}

/// An e-mail channel: an SMTP server, a sender and recipients.
fn read_email(cx: &mut Cx, t: Table, place: &str) -> Option<ChannelKind> {
    let host = required(cx, t, "host", place, "\"smtp.example.com\"")
        .and_then(|v| reader::text(cx, "host", v));
    let tls = match t.get("tls") {
        None => SmtpTls::Starttls,
        Some(v) => match reader::text(cx, "tls", v)?.expose() {
            "starttls" => SmtpTls::Starttls,
            "tls" => SmtpTls::Implicit,
            "none" => SmtpTls::None,
            other => {
                unknown(cx, v, "tls mode", other, &["starttls", "tls", "none"]);
                return None;
            }
        },
    };
    let port = match t.get("port") {
        Some(v) => u16::try_from(reader::integer(cx, "port", v, 1..65_536)?).ok()?,
        None => match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        },
    };
    let username = t
        .get("username")
        .and_then(|v| reader::text(cx, "username", v));
    let password = t
        .get("password")
        .and_then(|v| reader::text(cx, "password", v));
    if username.is_some() != password.is_some() {
        cx.error(
            t.span(),
            format!("{place} has a `username` without a `password` or the other way round"),
            Some("give both (password = \"${env:SMTP_PASSWORD}\"), or neither".into()),
        );
        return None;
    }
    let from = required(cx, t, "from", place, "\"plantao <ops@example.com>\"")
        .and_then(|v| reader::text(cx, "from", v));
    let to_value = required(cx, t, "to", place, "[\"oncall@example.com\"]")?;
    let to: Vec<Text> = reader::text_list(cx, "to", to_value)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    if to.is_empty() {
        cx.error(
            t.span(),
            format!("{place} sends to nobody"),
            Some("to = [\"oncall@example.com\"]".into()),
        );
        return None;
    }
    Some(ChannelKind::Email {
        host: host?,
        port,
        tls,
        credentials: username.zip(password),
        from: from?,
        to,
    })
}
