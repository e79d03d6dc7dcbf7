//! Redaction as a property: for any password, in every spelling a database URL or conninfo string can carry it
//! (percent-encoded or pasted raw with `/`, `?`, `#`, `@`, `%`, spaces; a query parameter; `password = '…'` with
//! quotes and escapes), no message a user can see contains it: parse errors, the redacted URL, `describe`,
//! `Debug`, and the free-text redaction the error printer applies to server messages.

use anonmigrate_core::database_url::{DatabaseUrl, UrlSource, redact_text, redact_url};
use proptest::prelude::*;

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Passwords: anything, and the characters that break URLs and conninfo strings, often.
fn password() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9/#?@:% '\"\\\\&=]{1,20}",
        "[a-z]{2,6}[/#?@%][a-z0-9]{2,6}",
    ]
    .prop_map(|p| p.trim().to_owned())
    .prop_filter("long enough to look for", |p| p.chars().count() >= 5)
}

/// Every text a user could see for this URL: the parse error (as the CLI's error printer shows it, through
/// `redact_text` once more), or the redacted URL, description and Debug.
fn visible(raw: &str) -> Vec<String> {
    let mut seen = vec![redact_url(raw)];
    for source in [UrlSource::Flag, UrlSource::Environment, UrlSource::DotEnv(".env".into())] {
        match DatabaseUrl::parse(raw, source) {
            Ok(url) => {
                seen.push(url.redacted());
                seen.push(url.describe());
                seen.push(format!("{url:?}"));
                seen.push(redact_text(&url.libpq_url(10)));
            }
            Err(e) => seen.push(redact_text(&e.to_string())),
        }
    }
    seen
}

fn assert_hidden(password: &str, template: &str, seen: &[String]) -> Result<(), TestCaseError> {
    // A password that is part of the surrounding text (`postgres`, `app`) would be found anyway.
    prop_assume!(!template.contains(password));
    for text in seen {
        prop_assert!(!text.contains(password), "password {password:?} visible in {text:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn urls_never_show_their_password(password in password(), scheme in prop_oneof![
        Just("postgres"), Just("postgresql"), Just("postgresql+asyncpg"),
    ]) {
        let encoded = encode(&password);
        for (raw, secret) in [
            (format!("{scheme}://app_user:{encoded}@db.example:5432/app"), encoded.clone()),
            (format!("{scheme}://app_user:{password}@db.example:5432/app"), password.clone()),
            (format!("{scheme}://app_user:{password}@db.example/app?sslmode=require"), password.clone()),
            (format!("{scheme}://app_user:{password}%zz@db.example/app"), password.clone()),
            (format!("{scheme}://db.example/app?user=app_user&password={encoded}"), encoded.clone()),
            (format!("{scheme}://db.example/app?password={encoded}&sslmode=require"), encoded.clone()),
        ] {
            let template = raw.replace(&secret, "");
            assert_hidden(&password, &template, &visible(&raw))?;
            if secret != password {
                assert_hidden(&secret, &template, &visible(&raw))?;
            }
        }
    }

    #[test]
    fn conninfo_pairs_never_show_their_password(password in password(), key in prop_oneof![
        Just("password"), Just("PASSWORD"), Just("sslpassword"),
    ], eq in prop_oneof![Just("="), Just(" = "), Just("= "), Just(" =")]) {
        let quoted = format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut texts = vec![format!("connection failed: host=db {key}{eq}{quoted} dbname=app")];
        if !password.contains(char::is_whitespace) && !password.contains(['\'', '"']) {
            texts.push(format!("connection failed: host=db {key}{eq}{password} dbname=app"));
        }
        for text in texts {
            let template = text.replace(&password, "");
            assert_hidden(&password, &template, &[redact_text(&text)])?;
        }
    }

    #[test]
    fn urls_inside_messages_never_show_their_password(password in password()) {
        prop_assume!(!password.contains(char::is_whitespace));
        let text = format!("cannot connect to `postgresql://u:{password}@h:5432/d` (from --database-url): timeout");
        let template = text.replace(&password, "");
        assert_hidden(&password, &template, &[redact_text(&text)])?;
    }
}
