use entity::fold::fold;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;
use std::collections::HashSet;

/// Names are matched case-insensitively through a stored folded copy (`name_folded`). The first
/// folding missed some Unicode simple foldings (U+00B5 MICRO SIGN, U+1C80–U+1C88, U+1FBE, …);
/// this re-folds the stored copies with the full table. A name whose new folded form is already
/// held by another name of the same scope keeps its old copy (both names stay usable and distinct;
/// nothing is renamed or lost).
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Re-folds `table.name_folded`; `scope` is the column uniqueness is per (None: the whole table).
/// Returns how many rows changed.
pub async fn refold(db: &SchemaManagerConnection<'_>, table: &str, scope: Option<&str>) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let (t, id, name, folded) = (Alias::new(table), Alias::new("id"), Alias::new("name"), Alias::new("name_folded"));
    let mut select = Query::select();
    select.from(t.clone()).columns([id.clone(), name.clone(), folded.clone()]);
    if let Some(scope) = scope {
        select.expr_as(Expr::col(Alias::new(scope)), Alias::new("scope"));
    } else {
        select.expr_as(Expr::val(0i64), Alias::new("scope"));
    }
    let rows = db.query_all(backend.build(&select)).await?;
    let mut all = Vec::with_capacity(rows.len());
    for row in rows {
        let row_id: i64 = row.try_get("", "id")?;
        let row_scope: i64 = row.try_get("", "scope")?;
        let row_name: String = row.try_get("", "name")?;
        let row_folded: String = row.try_get("", "name_folded")?;
        all.push((row_id, row_scope, row_name, row_folded));
    }
    let mut taken: HashSet<(i64, String)> = all.iter().map(|(_, s, _, f)| (*s, f.clone())).collect();
    let mut changed = 0;
    for (row_id, row_scope, row_name, old) in all {
        let new = fold(&row_name);
        if new == old || taken.contains(&(row_scope, new.clone())) {
            continue;
        }
        let update = Query::update()
            .table(t.clone())
            .value(folded.clone(), new.clone())
            .and_where(Expr::col(id.clone()).eq(row_id))
            .to_owned();
        db.execute(backend.build(&update)).await?;
        taken.remove(&(row_scope, old));
        taken.insert((row_scope, new));
        changed += 1;
    }
    Ok(changed)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        refold(db, "orgs", None).await?;
        refold(db, "actions", Some("org_id")).await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The old folding is gone; the new copies are valid for it too where it mapped at all.
        Ok(())
    }
}
