//! What the listing queries of the PostgreSQL store share: filters as bound parameters, the
//! keyset condition of the memory store's order (time, then key).

use sqlx::{Postgres, QueryBuilder};

use crate::store::{Cursor, StoreError};

/// Appends ` AND {column} IN (…)` for a non-empty states filter.
pub(super) fn push_states<'s>(
    qb: &mut QueryBuilder<Postgres>,
    column: &str,
    states: impl ExactSizeIterator<Item = &'s str>,
) {
    if states.len() == 0 {
        return;
    }
    qb.push(format!(" AND {column} IN ("));
    let mut names = qb.separated(", ");
    for state in states {
        names.push_bind(state.to_owned());
    }
    qb.push(")");
}

/// Appends the keyset condition: after `after`, by column `time`, then column `key`.
pub(super) fn push_after(
    qb: &mut QueryBuilder<Postgres>,
    time: &str,
    key: &str,
    after: Option<&Cursor>,
) -> Result<(), StoreError> {
    if let Some(after) = after {
        let micros = after.micros()?;
        qb.push(format!(" AND ({time} > "));
        qb.push_bind(micros);
        qb.push(format!(" OR ({time} = "));
        qb.push_bind(micros);
        qb.push(format!(" AND {key} > "));
        qb.push_bind(after.key.clone());
        qb.push("))");
    }
    Ok(())
}
