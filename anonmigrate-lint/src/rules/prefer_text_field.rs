//! `prefer-text-field`: `text` over `varchar(n)`.

use pg_query::NodeEnum;
use pg_query::protobuf::a_const::Val;

use super::{Check, Example, Hit, Rule, StatementCx};
use crate::config::Level;
use crate::sql;

pub static RULE: Rule = Rule {
    id: "prefer-text-field",
    default_level: Level::Warn,
    summary: "A column of type `varchar(n)` or `char(n)`.",
    why: "In PostgreSQL `varchar(n)` is stored exactly like `text` and is no faster; the length is only a check, and \
          changing it later is an ALTER COLUMN TYPE under an ACCESS EXCLUSIVE lock (with a rewrite when narrowing). \
          `char(n)` also pads values with spaces.",
    help: "Use `text`, with `CHECK (char_length(col) <= n)` when the limit is a real rule (a check can be replaced \
           later with NOT VALID + VALIDATE without blocking); keep `varchar(n)` with an allow comment when the limit \
           is part of a contract.",
    check: Check::Statement(check),
    once_per_migration: false,
    bad: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY, name varchar(100) NOT NULL);"),
    good: Example::new(&[], "CREATE TABLE rooms (id bigint PRIMARY KEY, name text NOT NULL CHECK (char_length(name) <= 100));"),
};

fn check(cx: &StatementCx<'_>) -> Vec<Hit> {
    sql::columns(cx.node)
        .into_iter()
        .filter_map(|c| {
            let type_name = c.def.type_name.as_ref()?;
            let sql_type = sql::SqlType::of(type_name);
            let spelled = match sql_type.name {
                "varchar" => "varchar",
                "bpchar" => "char",
                _ => return None,
            };
            let length = type_name.typmods.first().and_then(|m| match m.node.as_ref()? {
                NodeEnum::AConst(constant) => match constant.val.as_ref()? {
                    Val::Ival(i) => Some(i.ival),
                    _ => None,
                },
                _ => None,
            })?;
            Some(Hit::at(
                c.location().or(sql_type.location),
                format!("column `{}` of `{}` is {spelled}({length}); text does the same without the locked ALTER to change the limit later", c.name, sql::relation_key(c.table)),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::testing::check;

    crate::rules::examples_test!();

    #[test]
    fn bare_varchar_is_text_already() {
        let out = check(&[], "CREATE TABLE r (a varchar, b character varying(10), c char(2));");
        assert_eq!(
            out,
            "line 1: warning [prefer-text-field] column `b` of `r` is varchar(10); text does the same without the locked ALTER to change the limit later\n\
             line 1: warning [prefer-text-field] column `c` of `r` is char(2); text does the same without the locked ALTER to change the limit later\n"
        );
    }
}
